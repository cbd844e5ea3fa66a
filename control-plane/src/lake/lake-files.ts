import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pipeline } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { Inject, Injectable } from '@nestjs/common';
import { CONFIG, Config } from '../config/config';
import { DATABASE, Db } from '../store/database';
import type { LakeRecord } from './lake-record';

/**
 * The local lake's read side (CONTRACT §9): the files the lake writer committed (its manifest,
 * `lake_files`), and their lines. A file on disk that is not in the manifest (one being written,
 * or left by a crash) is never read. Used by the replay from the lake.
 */
export interface LakeFile {
  /** Path below the lake's root: `tenant=<t>/dt=<YYYY-MM-DD>/hour=<HH>/<name>.json.gz`. */
  path: string;
  tenant: string;
  /** Start of the file's partition hour (ms since the epoch, UTC). */
  hourStart: number;
  records: number;
  bytes: number;
  /** The oldest and newest `receivedAt` of its records (ms). */
  minReceivedAt: number;
  maxReceivedAt: number;
}

const HOUR_MS = 3600_000;

/** Start of a partition's hour (ms): `dt` and `hour` are the UTC date and hour of `receivedAt`. */
export function hourStartOf(partition: LakeRecord['partition']): number {
  return Date.parse(`${partition.dt}T${partition.hour}:00:00.000Z`);
}

/**
 * The manifest's files of `tenant` whose partition hour is the one of `from` or later: every
 * committed file that can hold a record received at or after `from` (ms). Oldest hour first,
 * and within an hour in the order they were written.
 */
export function listLakeFiles(db: Db, tenant: string, from: number): LakeFile[] {
  const rows = db
    .prepare(
      `SELECT path, tenant, hour_start, records, bytes, min_received_at, max_received_at FROM lake_files
        WHERE tenant = ? AND hour_start >= ? ORDER BY hour_start, id`,
    )
    .all(tenant, Math.floor(from / HOUR_MS) * HOUR_MS) as {
    path: string; tenant: string; hour_start: number; records: number; bytes: number; min_received_at: number; max_received_at: number;
  }[];
  return rows.map((r) => ({
    path: r.path,
    tenant: r.tenant,
    hourStart: r.hour_start,
    records: r.records,
    bytes: r.bytes,
    minReceivedAt: r.min_received_at,
    maxReceivedAt: r.max_received_at,
  }));
}

/** The lines of a lake file (each a stream record's JSON, without its newline), streamed: a file is never read whole. */
export async function* readLakeLines(absolutePath: string): AsyncGenerator<string> {
  // pipeline: a read or gunzip error ends the loop below with that error instead of hanging it.
  const gunzip = pipeline(createReadStream(absolutePath), createGunzip(), () => undefined);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of gunzip) {
    const parts = (rest + decoder.write(chunk as Buffer)).split('\n');
    rest = parts.pop()!;
    for (const line of parts) if (line) yield line;
  }
  rest += decoder.end();
  if (rest) yield rest;
}

/**
 * How many records a backfill reads from the lake: those of `tenants` in the partitions from
 * the hour of `from` (ms) on, received before `seam` (where the stream begins; the stream holds
 * the rest). A file wholly before the seam counts from the manifest; one across it is read.
 */
export async function lakeRecordsBefore(db: Db, lakeDir: string, tenants: string[], from: number, seam: number): Promise<number> {
  let records = 0;
  for (const tenant of new Set(tenants)) {
    for (const file of listLakeFiles(db, tenant, from)) {
      if (file.minReceivedAt >= seam) continue;
      if (file.maxReceivedAt < seam) {
        records += file.records;
        continue;
      }
      for await (const line of readLakeLines(join(lakeDir, file.path))) {
        if ((JSON.parse(line) as { receivedAt: number }).receivedAt < seam) records++;
      }
    }
  }
  return records;
}

@Injectable()
export class LakeFiles {
  constructor(@Inject(CONFIG) private readonly config: Config, @Inject(DATABASE) private readonly db: Db) {}

  /** The lake's root as Flink reads it (the filesystem connector's `path`). */
  get uri(): string {
    return pathToFileURL(this.config.lakeDir).href;
  }

  /** Since when the lake holds every accepted event; undefined while the writer never ran (or is off). */
  coveredFrom(): Date | undefined {
    if (!this.config.lakeEnabled) return undefined;
    const row = this.db.prepare('SELECT covered_from FROM lake_coverage WHERE id = 1').get() as { covered_from: number } | undefined;
    return row ? new Date(row.covered_from) : undefined;
  }

  /** See lakeRecordsBefore. */
  recordsBefore(tenants: string[], from: number, seam: number): Promise<number> {
    return lakeRecordsBefore(this.db, this.config.lakeDir, tenants, from, seam);
  }

  /** See listLakeFiles. */
  list(tenant: string, from: number): LakeFile[] {
    return listLakeFiles(this.db, tenant, from);
  }

  /** Where a listed file lies on disk. */
  absolutePath(file: LakeFile): string {
    return join(this.config.lakeDir, file.path);
  }

  /** A listed file's lines, one at a time. */
  lines(file: LakeFile): AsyncGenerator<string> {
    return readLakeLines(this.absolutePath(file));
  }
}
