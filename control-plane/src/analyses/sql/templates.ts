import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Templates } from './sql-generator';

/** flink-sql/templates, found from the source tree and from dist/ alike. */
export const TEMPLATES_DIR = resolve(__dirname, '..', '..', '..', '..', 'flink-sql', 'templates');

export function loadTemplates(dir = TEMPLATES_DIR): Templates {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    settings: read('settings.sql'),
    eventsSource: read('events-source.sql'),
    resultsSink: read('results-sink.sql'),
    deduplicate: read('deduplicate.sql'),
    progress: read('progress.sql'),
    lakeSource: read('lake-source.sql'),
    poolInserts: read('pool-inserts.sql'),
    kinds: {
      'flag-evaluations': read('flag-evaluations.sql'),
      'unique-contexts': read('unique-contexts.sql'),
      'flag-usage': read('flag-usage.sql'),
      experiment: read('experiment.sql'),
      'custom-sql': read('custom-sql.sql'),
    },
  };
}
