// `npm run synth`: the CloudFormation template and its assets in cdk/cdk.out, offline (no AWS
// account, credentials or Docker). First the bootstrap builds what is missing (npm ci, the runner
// JAR with Maven); then the app runs directly, without the CDK CLI, so nothing asks AWS who we are.
//   npm run synth -- -c region=eu-west-1 -c certificateArn=arn:aws:acm:…
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrap, ROOT } from '../../scripts/bootstrap.mjs';

const JAR = join(ROOT, 'flink-sql/runner/target/flagstream-runner.jar');
const OUT = join(ROOT, 'cdk/cdk.out');
const started = Date.now();
const say = (line) => console.log(`[synth] ${line}`);

function contextArgs(argv) {
  const context = {};
  for (let i = 0; i < argv.length; i++) {
    const pair = argv[i] === '-c' || argv[i] === '--context' ? argv[++i] : argv[i].startsWith('--context=') ? argv[i].slice(10) : undefined;
    const at = pair?.indexOf('=') ?? -1;
    if (!pair || at < 1) throw new Error(`unexpected argument ${argv[i]}: pass context as -c key=value`);
    context[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return context;
}

function run(command, args, env = process.env) {
  const out = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env });
  if (out.error) throw new Error(`cannot run ${command}: ${out.error.message}`);
  if (out.status !== 0) throw new Error(`${[command, ...args].join(' ')} failed (exit ${out.status})`);
}

try {
  const context = contextArgs(process.argv.slice(2));
  try {
    // The managed-flink stand-in's API model (fetched from PyPI) is not needed here.
    await bootstrap({ serviceModels: 'optional' });
  } catch (error) {
    if (existsSync(JAR)) throw error;
    throw new Error(`${error.message}\nThe stack deploys the runner JAR (${JAR}): build it with \`node scripts/bootstrap.mjs\` (Node 20, Java 17 and Maven on the PATH), then run \`npm run synth\` again.`);
  }
  if (!existsSync(JAR)) throw new Error(`the runner JAR ${JAR} is missing: build it with \`node scripts/bootstrap.mjs\` (Java 17 and Maven)`);

  say('compiling the CDK app (tsc)');
  run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'cdk/tsconfig.build.json']);
  // A fresh cloud assembly: stale assets (a 66 MB JAR each) would pile up otherwise.
  rmSync(OUT, { recursive: true, force: true });
  say('synthesizing (cdk-nag checks run here; their findings are printed above the summary)');
  const env = { ...process.env, CDK_OUTDIR: OUT, ...(Object.keys(context).length ? { CDK_CONTEXT_JSON: JSON.stringify(context) } : {}) };
  run(process.execPath, [join(ROOT, 'cdk/dist/bin/flagstream.js')], env);
  say(`wrote ${OUT} in ${((Date.now() - started) / 1000).toFixed(1)} s: deploy it with a current CDK CLI (README: Deploy to AWS)`);
} catch (error) {
  console.error(`[synth] ${error.message}`);
  process.exit(1);
}
