import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root, from wherever this file runs (cdk/lib under ts-jest, cdk/dist/lib compiled). */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package-lock.json')) && existsSync(join(dir, 'cdk', 'control-plane.Dockerfile'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find the repository root above ${from}`);
  }
}

export const REPO_ROOT = findRepoRoot(__dirname);
