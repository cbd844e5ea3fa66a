import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

type Labels = Record<string, string>;

/** What each metric means, shown as its HELP line; a metric missing here shows its name. */
const HELP: Record<string, string> = {
  flagstream_events_accepted_total: 'Events the events API accepted (written to the events stream).',
  flagstream_events_rejected_total: 'Events the events API refused as invalid.',
  flagstream_events_late_total: 'Accepted events older than the lateness horizon (counted in lateEvents only).',
  flagstream_events_clock_ahead_total: 'Accepted events whose SDK clock was more than 5 min ahead (counted at their receive time).',
  flagstream_payloads_deduplicated_total: 'Payloads sent again after they were complete (answered from the ledger, nothing written).',
  flagstream_payload_ids_reused_total: 'Payload IDs that came again with other events (written as payloads of their own).',
  flagstream_ingest_rejected_total: 'Payloads answered 503 because the stream did not take them before the write deadline, by reason.',
  flagstream_stream_write_retries_total: 'Records the events stream refused or failed that were put again.',
  flagstream_stream_throttles_total: 'Records the events stream refused, by error code (ProvisionedThroughputExceededException is a throttle).',
  flagstream_stream_write_seconds: 'Time of one PutRecords call to the events stream.',
  flagstream_stream_queue_records: 'Records waiting for a PutRecords call to the events stream.',
  flagstream_stream_queue_bytes: 'Bytes of records waiting for, or in, a PutRecords call to the events stream.',
  flagstream_stream_inflight_calls: 'PutRecords calls to the events stream in flight.',
  flagstream_ingest_waiting_payloads: 'Payloads waiting for room under FLAGSTREAM_INGEST_MAX_INFLIGHT_BYTES.',
  flagstream_analyses: 'Analyses by status.',
};

/**
 * The process's Prometheus registry (prom-client), shown at GET /metrics. Counters are made on
 * first use; label names come from that first use and must stay the same for a name.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();

  inc(name: string, by = 1, labels: Labels = {}): void {
    let counter = this.counters.get(name);
    if (!counter) {
      counter = new Counter({ name, help: HELP[name] ?? name, labelNames: Object.keys(labels), registers: [this.registry] });
      this.counters.set(name, counter);
    }
    counter.inc(labels, by);
  }

  /** A gauge read when scraped: `read` gives its current values, one per label set. */
  gauge(name: string, read: () => { labels: Labels; value: number }[], labelNames: string[] = []): void {
    // A later reader of the same name (a service made again, as in tests) takes its place.
    this.registry.removeSingleMetric(name);
    new Gauge({
      name,
      help: HELP[name] ?? name,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { labels, value } of read()) this.set(labels, value);
      },
    });
  }

  /** The histogram of that name, made on first use. */
  histogram(name: string, buckets: number[]): Histogram {
    const existing = this.registry.getSingleMetric(name);
    if (existing instanceof Histogram) return existing;
    return new Histogram({ name, help: HELP[name] ?? name, buckets, registers: [this.registry] });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
