/**
 * Where each element of a JSON array is in its text: `starts[i]`..`ends[i]` (end exclusive) for
 * an element that is an object or an array; nothing for other elements. Undefined when the text
 * is not an array. Pure, one pass over the characters.
 *
 * The text must be valid JSON (as JSON.parse took it): it is not checked again here, only
 * scanned for brackets outside strings and for the commas between the top-level elements.
 * So the events API can keep each event's JSON as the SDK sent it instead of writing it again.
 */
export interface ArraySpans {
  /** How many elements the array has. */
  length: number;
  starts: number[];
  ends: number[];
}

export function arrayElementSpans(text: string): ArraySpans | undefined {
  const starts: number[] = [];
  const ends: number[] = [];
  let depth = 0;
  let index = 0;
  let elements = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      if (depth === 0) return undefined; // a top-level string
      // To the closing quote, found by indexOf (native, far faster than a loop over a string's
      // characters here): the first quote after an even number of backslashes (each pair an
      // escaped backslash; an odd one escapes the quote).
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return undefined; // unterminated: not JSON
        let backslashes = 0;
        while (text.charCodeAt(i - 1 - backslashes) === BACKSLASH) backslashes++;
        if (backslashes % 2 === 0) break;
      }
      if (depth === 1) elements = index + 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 0 && c !== OPEN_BRACKET) return undefined;
      if (depth === 1) {
        starts[index] = i;
        elements = index + 1;
      }
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 1) ends[index] = i + 1;
    } else if (depth === 1) {
      if (c === COMMA) index++;
      else if (c > SPACE) elements = index + 1; // a number, true, false or null
    } else if (depth === 0 && c > SPACE) {
      return undefined; // a top-level value that is not an array
    }
  }
  return { length: elements, starts, ends };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const SPACE = 0x20;
