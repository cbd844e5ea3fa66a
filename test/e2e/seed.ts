/** The seed of a test file's random traffic: FLAGSTREAM_TEST_SEED replays a run (each file logs the one it used). */
export const SEED = Number(process.env.FLAGSTREAM_TEST_SEED ?? Date.now() % 1_000_000_007);

/** mulberry32: random but reproducible traffic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
