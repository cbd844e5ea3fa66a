// Starts the local stack's processes and brings back any that exits unexpectedly:
// a log line, a backoff (1 s, doubling up to 30 s; back to 1 s once a process has run
// for a minute), never while stopping. Each process runs in its own process group, so
// stop() also ends what it started itself. The current pids are in <dataDir>/pids.json,
// rewritten on every (re)start, for tests that kill a process and expect it back.
import { spawn } from 'node:child_process';
import { createWriteStream, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 30000, resetAfterMs: 60000 };

/**
 * @param {object} options
 * @param {string} options.logsDir  each process' output goes to <logsDir>/<name>.log (appended across restarts)
 * @param {string} [options.pidsFile]  rewritten with {name: pid} on every (re)start, removed by stop()
 * @param {(line: string) => void} [options.log]
 * @param {string[]} [options.echo]  names whose output also goes to the console
 * @param {string} [options.cwd]
 * @param {typeof DEFAULT_BACKOFF} [options.backoff]
 */
export function createSupervisor({ logsDir, pidsFile, log = (line) => console.log(line), echo = [], cwd = process.cwd(), backoff = DEFAULT_BACKOFF }) {
  /** In start order. */
  const services = [];
  let stopping = false;
  // Restarts begin once the stack is up: an exit while starting fails the start instead (see local-stack.mjs).
  let restarting = false;

  const writePids = () => {
    if (!pidsFile || stopping) return;
    const tmp = `${pidsFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(pids(), null, 2) + '\n');
    renameSync(tmp, pidsFile);
  };

  function pids() {
    return Object.fromEntries(services.filter((s) => s.child).map((s) => [s.name, s.child.pid]));
  }

  function launch(service) {
    const child = spawn(service.command, service.args, {
      cwd,
      env: { ...process.env, ...service.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    service.child = child;
    service.alive = true;
    service.startedAt = Date.now();
    // end: false, so the log file stays open for the next run after a restart.
    child.stdout.pipe(service.out, { end: false });
    child.stderr.pipe(service.out, { end: false });
    if (echo.includes(service.name)) {
      child.stdout.on('data', (d) => process.stdout.write(prefix(service.name, d)));
      child.stderr.on('data', (d) => process.stderr.write(prefix(service.name, d)));
    }
    let ended = false;
    const onEnd = (how) => {
      if (ended) return;
      ended = true;
      service.alive = false;
      service.exits.forEach((listener) => listener(how));
      if (stopping) return;
      const ranMs = Date.now() - service.startedAt;
      if (!restarting) {
        log(`${service.name} exited (${how}); see ${service.logFile}`);
        return;
      }
      if (ranMs >= backoff.resetAfterMs) service.delayMs = backoff.initialMs;
      const delayMs = service.delayMs;
      service.delayMs = Math.min(delayMs * 2, backoff.maxMs);
      service.restarts++;
      log(`${service.name} exited (${how}) after ${Math.round(ranMs / 1000)} s; restarting it in ${delayMs / 1000} s (restart ${service.restarts}); see ${service.logFile}`);
      service.timer = setTimeout(() => {
        service.timer = undefined;
        if (stopping) return;
        try {
          launch(service);
          log(`${service.name} restarted (pid ${service.child.pid})`);
        } catch (error) {
          log(`${service.name} could not be restarted: ${error.message}`);
        }
      }, delayMs);
    };
    child.on('exit', (code, signal) => onEnd(signal ?? `code ${code}`));
    child.on('error', (error) => onEnd(`error: ${error.message}`));
    if (child.pid !== undefined) writePids();
    return child;
  }

  /** Starts a supervised process; returns a handle whose pid and alive follow restarts. */
  function start(name, command, args, env = {}) {
    const logFile = join(logsDir, `${name}.log`);
    const service = {
      name, command, args, env, logFile,
      out: createWriteStream(logFile, { flags: 'a' }),
      child: undefined, alive: false, startedAt: 0, restarts: 0, delayMs: backoff.initialMs, timer: undefined, exits: [],
    };
    services.push(service);
    launch(service);
    return {
      name,
      get pid() { return service.child?.pid; },
      get alive() { return service.alive; },
      get restarts() { return service.restarts; },
      /** Calls `listener(how)` on every exit of the process, expected or not. */
      onExit(listener) { service.exits.push(listener); },
    };
  }

  /** From now on a process that exits is started again (after the backoff). */
  function enableRestarts() {
    restarting = true;
  }

  async function stop() {
    stopping = true;
    for (const service of services) {
      if (service.timer) clearTimeout(service.timer);
      service.timer = undefined;
    }
    for (const service of [...services].reverse()) {
      const child = service.child;
      if (!child || !service.alive) continue;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      // SIGTERM, then SIGKILL after 10 s; either way stop() returns only once the process has
      // ended (a port of a killed process is free only then).
      const exited = new Promise((resolve) => {
        if (!service.alive) return resolve();
        child.once('exit', () => resolve());
      });
      let timer;
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => resolve('timeout'), 10000);
      });
      if ((await Promise.race([exited, killed])) === 'timeout') {
        log(`${service.name} did not stop within 10 s of SIGTERM; killing it`);
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      }
      clearTimeout(timer);
    }
    for (const service of services) service.out.end();
    if (pidsFile) rmSync(pidsFile, { force: true });
  }

  // Should the supervisor itself end without stop() (a crash, process.exit), take the children along.
  process.once('exit', () => {
    for (const service of services) {
      if (!service.alive || !service.child) continue;
      try {
        process.kill(-service.child.pid, 'SIGTERM');
      } catch {}
    }
  });

  return { start, enableRestarts, pids, stop, get stopping() { return stopping; } };
}

function prefix(name, data) {
  return data
    .toString()
    .split('\n')
    .filter((l) => l.length)
    .map((l) => `[${name}] ${l}\n`)
    .join('');
}
