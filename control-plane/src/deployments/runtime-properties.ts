/**
 * An analysis' SQL and job name as Managed Flink runtime properties, the way the runner
 * reads them (flink-sql/runner SqlRunner.flagstreamProperties + concatSqlParts; keep the two
 * in step): the script in ordered parts `sql.0`, `sql.1`, … of at most 2048 characters, and
 * `job.name`, in the group `FlinkApplicationProperties`; parts past its 50 properties go on in
 * `FlinkApplicationProperties.1`, `.2`, … (numbering continues across groups), at most 50 groups.
 */

export const PROPERTY_GROUP = 'FlinkApplicationProperties';
/** The service's limits (its API model says the same: PropertyValue, PropertyMap, PropertyGroups). */
export const MAX_VALUE_CHARS = 2048;
export const MAX_PROPERTIES_PER_GROUP = 50;
export const MAX_GROUPS = 50;
/** `job.name` takes one place in the first group. */
export const MAX_SQL_PARTS = MAX_GROUPS * MAX_PROPERTIES_PER_GROUP - 1;

export interface PropertyGroup {
  PropertyGroupId: string;
  PropertyMap: Record<string, string>;
}

const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
const isLowSurrogate = (c: string | undefined) => c !== undefined && c >= '\udc00' && c <= '\udfff';

/**
 * The script cut into parts of at most `max` characters. No part starts or ends with
 * whitespace (so a service or reader that trims values changes nothing) or splits a
 * surrogate pair; the script's own leading and trailing whitespace is dropped.
 */
export function splitSql(sql: string, max = MAX_VALUE_CHARS): string[] {
  const text = sql.trim();
  const parts: string[] = [];
  let at = 0;
  while (at < text.length) {
    let end = Math.min(text.length, at + max);
    if (end < text.length) {
      while (end > at + 1 && (isSpace(text[end - 1]) || isSpace(text[end]) || isLowSurrogate(text[end]))) end--;
      if (end === at + 1 && (isSpace(text[end]) || isLowSurrogate(text[end]))) throw new Error(`the SQL cannot be cut into runtime properties of at most ${max} characters near character ${at}: too much whitespace there`);
    }
    parts.push(text.slice(at, end));
    at = end;
  }
  return parts;
}

/** The property groups of one job; throws when the script needs more than the service allows. */
export function toPropertyGroups(sql: string, jobName: string): PropertyGroup[] {
  const parts = splitSql(sql);
  if (parts.length === 0) throw new Error('the SQL script is empty');
  if (parts.length > MAX_SQL_PARTS) {
    throw new Error(
      `the SQL script is too long for Managed Flink's runtime properties: ${sql.length} characters need ${parts.length} parts of at most ${MAX_VALUE_CHARS}; ` +
        `${MAX_GROUPS} groups of ${MAX_PROPERTIES_PER_GROUP} properties hold ${MAX_SQL_PARTS}`,
    );
  }
  if (jobName.length > MAX_VALUE_CHARS) throw new Error(`the job name has more than ${MAX_VALUE_CHARS} characters`);
  const groups: PropertyGroup[] = [{ PropertyGroupId: PROPERTY_GROUP, PropertyMap: { 'job.name': jobName } }];
  parts.forEach((part, i) => {
    let group = groups[groups.length - 1];
    if (Object.keys(group.PropertyMap).length === MAX_PROPERTIES_PER_GROUP) {
      group = { PropertyGroupId: `${PROPERTY_GROUP}.${groups.length}`, PropertyMap: {} };
      groups.push(group);
    }
    group.PropertyMap[`sql.${i}`] = part;
  });
  return groups;
}

/** What the runner reads back: the script and the job name (the TypeScript twin of the runner's reading, for tests). */
export function fromPropertyGroups(groups: PropertyGroup[]): { sql?: string; jobName?: string } {
  const merged = new Map<string, string>();
  const ours = groups.filter((g) => g.PropertyGroupId === PROPERTY_GROUP || /^FlinkApplicationProperties\.[1-9]\d*$/.test(g.PropertyGroupId));
  for (const group of ours) {
    for (const [key, value] of Object.entries(group.PropertyMap)) {
      if (merged.has(key)) throw new Error(`property ${key} is in two groups`);
      merged.set(key, value);
    }
  }
  let sql = '';
  for (let i = 0; merged.has(`sql.${i}`); i++) sql += merged.get(`sql.${i}`);
  return { sql: sql || undefined, jobName: merged.get('job.name') };
}

/** Two sets of groups hold the same properties (the service may answer them in another order). */
export function samePropertyGroups(a: PropertyGroup[], b: PropertyGroup[]): boolean {
  const canonical = (groups: PropertyGroup[]) =>
    JSON.stringify(
      [...groups]
        .sort((x, y) => x.PropertyGroupId.localeCompare(y.PropertyGroupId))
        .map((g) => [g.PropertyGroupId, Object.entries(g.PropertyMap).sort(([x], [y]) => x.localeCompare(y))]),
    );
  return canonical(a) === canonical(b);
}
