import { Injectable } from '@nestjs/common';

type Labels = Record<string, string>;

/** A small in-process registry rendered in the Prometheus text format. */
@Injectable()
export class MetricsService {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly gauges = new Map<string, () => { labels: Labels; value: number }[]>();

  inc(name: string, by = 1, labels: Labels = {}): void {
    const series = this.counters.get(name) ?? new Map<string, number>();
    const key = renderLabels(labels);
    series.set(key, (series.get(key) ?? 0) + by);
    this.counters.set(name, series);
  }

  gauge(name: string, read: () => { labels: Labels; value: number }[]): void {
    this.gauges.set(name, read);
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, series] of this.counters) {
      lines.push(`# TYPE ${name} counter`);
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`);
    }
    for (const [name, read] of this.gauges) {
      lines.push(`# TYPE ${name} gauge`);
      for (const { labels, value } of read()) lines.push(`${name}${renderLabels(labels)} ${value}`);
    }
    return lines.join('\n') + '\n';
  }
}

function renderLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (!entries.length) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}
