// Makes a fresh clone runnable: installs npm packages, compiles the TypeScript and
// builds the Flink runner, each only when its inputs changed since the last time.
// Dependency-free on purpose: it runs before `npm ci`.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMPS = join(ROOT, 'node_modules', '.flagstream-stamps.json');

const say = (line) => console.log(`[bootstrap] ${line}`);

function filesUnder(path, accept) {
  const full = join(ROOT, path);
  if (!existsSync(full)) return [];
  if (statSync(full).isFile()) return [path];
  const out = [];
  for (const entry of readdirSync(full, { withFileTypes: true })) {
    if (['node_modules', 'target', 'dist', '.git'].includes(entry.name)) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(child, accept));
    else if (accept(child)) out.push(child);
  }
  return out;
}

/** A hash of the inputs' paths and contents: clones have fresh mtimes, so mtimes cannot tell. */
function hashOf(paths, accept = () => true) {
  const hash = createHash('sha256');
  for (const file of paths.flatMap((p) => filesUnder(p, accept)).sort()) {
    hash.update(relative(ROOT, join(ROOT, file)));
    hash.update(readFileSync(join(ROOT, file)));
  }
  return hash.digest('hex');
}

function readStamps() {
  try {
    return JSON.parse(readFileSync(STAMPS, 'utf8'));
  } catch {
    return {};
  }
}

function writeStamp(name, value) {
  const stamps = readStamps();
  stamps[name] = value;
  mkdirSync(dirname(STAMPS), { recursive: true });
  writeFileSync(STAMPS, JSON.stringify(stamps, null, 2));
}

/** Runs a command, printing an elapsed-time line every 20 s so long steps show progress. */
export function run(command, args, { label, quiet = false, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { cwd: ROOT, env, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    if (quiet) {
      child.stdout.on('data', (d) => (output = (output + d).slice(-20000)));
      child.stderr.on('data', (d) => (output = (output + d).slice(-20000)));
    }
    const ticker = setInterval(() => say(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)`), 20000);
    child.on('error', (error) => {
      clearInterval(ticker);
      reject(new Error(`${label}: cannot run ${command}: ${error.message}`));
    });
    child.on('exit', (code) => {
      clearInterval(ticker);
      if (code === 0) {
        say(`${label}: done in ${Math.round((Date.now() - started) / 1000)} s`);
        resolve();
      } else {
        if (quiet) process.stderr.write(output);
        reject(new Error(`${label} failed (exit ${code})`));
      }
    });
  });
}

function requireTool(command, args, hint) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', () => reject(new Error(`${command} is not on the PATH: ${hint}`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} does not work: ${hint}`))));
  });
}

/**
 * The published API model of Managed Service for Apache Flink (kinesisanalyticsv2), as
 * botocore ships it on PyPI: the managed-flink stand-in and the tests check every request
 * against it (control-plane/src/standin/service-model.ts). Fetched with pip, never committed.
 */
export const BOTOCORE = {
  version: '1.44.5',
  wheel: 'botocore-1.44.5-py3-none-any.whl',
  sha256: '8f16a56d1dff125dd65322ae021efa7ba5195a6db5102b96862566055b748921',
  models: ['kinesisanalyticsv2/2018-05-23/service-2.json'],
};
export const SERVICE_MODELS_DIR = join(ROOT, 'node_modules', '.cache', 'flagstream', `botocore-${BOTOCORE.version}`);

/** One file of a wheel (a ZIP archive), read with Python's zipfile: pip needs Python anyway. */
function wheelEntry(wheelPath, name) {
  const out = spawnSync('python3', ['-c', 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))', wheelPath, name], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.status !== 0) throw new Error(`cannot read ${name} from ${wheelPath}: ${out.error?.message ?? out.stderr.toString().trim()}`);
  return out.stdout;
}

/** The path of a model file once fetched, e.g. serviceModelPath('kinesisanalyticsv2/2018-05-23/service-2.json'). */
export const serviceModelPath = (model) => join(SERVICE_MODELS_DIR, model);

/** Downloads botocore's wheel from PyPI with pip (checking its hash) and keeps the service models it needs. */
export async function fetchServiceModels() {
  if (BOTOCORE.models.every((m) => existsSync(serviceModelPath(m)))) return;
  const dir = mkdtempSync(join(tmpdir(), 'flagstream-botocore-'));
  try {
    const args = ['download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-d', dir, `botocore==${BOTOCORE.version}`];
    let lastError;
    for (const [command, prefix] of [['python3', ['-m', 'pip']], ['pip3', []], ['pip', []]]) {
      try {
        await run(command, [...prefix, ...args], { label: `pip download botocore ${BOTOCORE.version} (the Managed Flink API model)`, quiet: true });
        lastError = undefined;
        break;
      } catch (error) {
        lastError = error;
      }
    }
    if (lastError) throw new Error(`${lastError.message}: the tests need Python's pip to fetch botocore's API model from PyPI`);
    const wheel = readFileSync(join(dir, BOTOCORE.wheel));
    const sha256 = createHash('sha256').update(wheel).digest('hex');
    if (sha256 !== BOTOCORE.sha256) throw new Error(`${BOTOCORE.wheel} has sha256 ${sha256}, expected ${BOTOCORE.sha256}`);
    for (const model of BOTOCORE.models) {
      const json = gunzipSync(wheelEntry(join(dir, BOTOCORE.wheel), `botocore/data/${model}.gz`));
      JSON.parse(json.toString('utf8'));
      const target = serviceModelPath(model);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(`${target}.tmp`, json);
      renameSync(`${target}.tmp`, target);
    }
    say(`kept ${BOTOCORE.models.join(', ')} of botocore ${BOTOCORE.version} in ${relative(ROOT, SERVICE_MODELS_DIR)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `serviceModels`: 'required' fails without the API model (tests, the managed-flink stand-in),
 * 'optional' only warns (a local `npm start` does not need it).
 */
export async function bootstrap({ serviceModels = 'required' } = {}) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const lockHash = hashOf(['package-lock.json']);
  if (!existsSync(join(ROOT, 'node_modules')) || readStamps().npm !== lockHash) {
    say('installing npm packages (npm ci; the first time takes a few minutes)');
    await run(npm, ['ci', '--no-audit', '--no-fund'], { label: 'npm ci' });
    writeStamp('npm', lockHash);
  }

  try {
    await fetchServiceModels();
  } catch (error) {
    if (serviceModels === 'required') throw error;
    say(`warning: ${error.message} (only the managed-flink target's stand-in needs it)`);
  }

  const tsHash = hashOf(['schemas', 'control-plane/src', 'control-plane/tsconfig.json', 'control-plane/tsconfig.build.json', 'tsconfig.base.json']);
  if (readStamps().typescript !== tsHash || !existsSync(join(ROOT, 'control-plane/dist/main.js'))) {
    say('compiling the control plane (tsc)');
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'control-plane/tsconfig.build.json'], { label: 'tsc', quiet: true });
    writeStamp('typescript', tsHash);
  }

  const javaHash = hashOf(['flink-sql/pom.xml', 'flink-sql/runner', 'flink-sql/local-cluster'], (f) => /pom\.xml$|\/src\//.test(f));
  const jar = join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar');
  if (readStamps().maven !== javaHash || !existsSync(jar) || !existsSync(join(ROOT, 'flink-sql/local-cluster/target/lib'))) {
    await requireTool('java', ['-version'], 'install Java 17');
    await requireTool('mvn', ['-v'], 'install Maven 3.8+');
    say('building the Flink runner and the local Flink cluster (Maven; the first time downloads Flink, several minutes)');
    await run('mvn', ['-B', '-q', '-ntp', '-f', 'flink-sql/pom.xml', 'package', '-DskipTests'], { label: 'maven', quiet: true });
    writeStamp('maven', javaHash);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  bootstrap().catch((error) => {
    console.error(`[bootstrap] ${error.message}`);
    process.exit(1);
  });
}
