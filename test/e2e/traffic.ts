import type { LdContext } from './sdk-host';

/** What the load-generating e2e files send (pools.e2e.ts, kill.e2e.ts). */

/** host.cjs' TestData flags; ghost-flag is unknown to the SDK, so its evaluations have variation null. */
export const SDK_FLAGS = ['new-checkout', 'dark-mode', 'search-v2', 'pricing-experiment', 'ghost-flag'];

/** Contexts the SDK hosts evaluate for: single-kind users with and without attributes, a multi-kind and an organization. */
export const SDK_CONTEXTS: LdContext[] = [
  { kind: 'user', key: 'user-1', plan: 'free' },
  { kind: 'user', key: 'user-2', plan: 'pro' },
  { kind: 'user', key: 'user-3' },
  { kind: 'multi', user: { key: 'user-5', plan: 'pro' }, organization: { key: 'org-1' } },
  { kind: 'organization', key: 'org-2' },
];

/** The /bulk loaders' flags and their variations. */
export const BULK_FLAGS: [string, number[]][] = [['checkout', [0, 1]], ['banner', [0, 1, 2]], ['search', [0, 1, 2, 3]]];
