/**
 * The only ways a value enters generated SQL. User text is never pasted: strings
 * travel base64-encoded (an alphabet that cannot break out of a literal) and are
 * decoded by Flink, so quotes, backslashes, newlines and any unicode round-trip.
 */
export function stringParam(value: string): string {
  return `FROM_BASE64('${Buffer.from(value, 'utf8').toString('base64')}')`;
}

/** An integer, checked to be one. */
export function intParam(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
  return String(value);
}

const INTERVAL_UNITS = { s: 'SECOND', m: 'MINUTE', h: 'HOUR', d: 'DAY' } as const;
export type DurationUnit = keyof typeof INTERVAL_UNITS;

export interface Duration {
  amount: number;
  unit: DurationUnit;
}

export function parseDuration(text: string): Duration | undefined {
  const match = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text);
  return match ? { amount: Number(match[1]), unit: match[2] as DurationUnit } : undefined;
}

export function durationSeconds(d: Duration): number {
  return d.amount * { s: 1, m: 60, h: 3600, d: 86400 }[d.unit];
}

/** An interval literal in whole seconds, with a precision wide enough for any allowed window. */
export function intervalParam(seconds: number): string {
  const digits = String(intParam(seconds)).length;
  return `INTERVAL '${seconds}' SECOND(${Math.max(2, digits)})`;
}

/**
 * A WITH-clause option. Keys and values come from the operator's configuration,
 * never from a request; they are still escaped and checked for control characters.
 */
export function option(key: string, value: string): string {
  for (const text of [key, value]) {
    if (/[\u0000-\u001f\u007f]/.test(text)) throw new Error(`control character in connector option ${JSON.stringify(key)}`);
  }
  return `  '${key.replace(/'/g, "''")}' = '${value.replace(/'/g, "''")}'`;
}
