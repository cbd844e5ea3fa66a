// One "SDK host": the real LaunchDarkly Node server SDK (@launchdarkly/node-server-sdk
// 9.13.7) in a process of its own, its flags from the SDK's TestData source (no network
// but the events URI), sending its events on its own timer (`flushInterval`) to
// `eventsUri`, as an application would. Started by test/e2e/sdk-host.ts with
// `--require clock-offset.cjs` (a host whose clock is wrong). Commands arrive over IPC:
//
//   {id, type: 'evaluate', flagKey, context, times}  → evaluates `times` times
//   {id, type: 'track', eventKey, context, times, data?, metricValue?}
//                                                    → custom events (metricValue 1 unless
//                                                      given; null: none)
//   {id, type: 'identify', context}                  → an identify event
//   {id, type: 'run', steps: [{type, ...}]}           → evaluate/track/identify steps, in order
//   {id, type: 'clock', offsetMs}                    → steps the host's clock
//   {id, type: 'close'}                              → flush(), close(), exit
//
// and each answers {id, ok} once done (or {id, error}). The host tells nothing else:
// what it sent is for the proxy to record. `config.flags` (optional) adds full flag
// definitions (LaunchDarkly's flag JSON: rollouts, rules, trackEvents) to TestData.
'use strict';

const { init, integrations } = require('@launchdarkly/node-server-sdk');

const config = JSON.parse(process.env.FLAGSTREAM_SDK_HOST_CONFIG ?? '{}');
const lines = [];
const logger = {
  // Kept (not printed): the harness asks for them when something goes wrong.
  error: (...a) => lines.push(`error ${a.join(' ')}`),
  warn: (...a) => lines.push(`warn ${a.join(' ')}`),
  info: () => {},
  debug: () => {},
};

/** The flags every host knows. A key outside this list evaluates as an unknown flag. */
function defineFlags(td) {
  td.update(
    td.flag('new-checkout').booleanFlag().variationForUser('user-1', true).variationForUser('user-4', true).fallthroughVariation(false),
  );
  td.update(
    td
      .flag('dark-mode')
      .variations('light', 'dark', 'auto')
      .variationForUser('user-3', 2)
      .ifMatch('user', 'plan', 'pro')
      .thenReturn(1)
      .fallthroughVariation(0)
      .offVariation(0),
  );
  td.update(td.flag('search-v2').variations('v1', 'v2', 'v3', 'v4').variationForContext('organization', 'org-1', 3).fallthroughVariation(1));
  // An experiment: the SDK sends a full `feature` event for every evaluation (trackEvents).
  td.usePreconfiguredFlag({
    key: 'pricing-experiment',
    version: 7,
    on: true,
    variations: ['control', 'treatment'],
    fallthrough: { variation: 1 },
    offVariation: 0,
    targets: [{ values: ['user-2'], variation: 0 }],
    rules: [],
    prerequisites: [],
    salt: 'pricing',
    trackEvents: true,
  });
  // Flags a test brings along (SdkHostOptions.flags), as LaunchDarkly's flag JSON.
  for (const flag of config.flags ?? []) td.usePreconfiguredFlag(flag);
}

async function main() {
  const td = new integrations.TestData();
  defineFlags(td);
  const client = init(config.sdkKey, {
    updateProcessor: td.getFactory(),
    eventsUri: config.eventsUri,
    // Unused (TestData), pointed at nowhere reachable so nothing leaves the machine.
    baseUri: 'http://127.0.0.1:9',
    streamUri: 'http://127.0.0.1:9',
    sendEvents: true,
    flushInterval: config.flushIntervalSeconds ?? 5,
    diagnosticOptOut: true,
    enableEventCompression: !!config.gzip,
    capacity: 100000,
    logger,
  });
  await client.waitForInitialization({ timeout: 10 });

  const handlers = {
    async evaluate({ flagKey, context, times }) {
      for (let i = 0; i < times; i++) await client.variation(flagKey, context, 'fallback');
    },
    async track({ eventKey, context, times, data, metricValue }) {
      // metricValue: 1 unless the test says (null: no metricValue at all).
      const value = metricValue === undefined ? 1 : metricValue === null ? undefined : metricValue;
      for (let i = 0; i < (times ?? 1); i++) client.track(eventKey, context, data, value);
    },
    async identify({ context }) {
      client.identify(context);
    },
    async run({ steps }) {
      for (const step of steps) {
        if (!['evaluate', 'track', 'identify'].includes(step.type)) throw new Error(`unknown step ${step.type}`);
        await handlers[step.type]({ times: 1, ...step });
      }
    },
    async clock({ offsetMs }) {
      globalThis.__flagstreamClock.set(offsetMs);
    },
    async close() {
      // The SDK's close() stops the flush timer without flushing: an application that
      // stops sends its queue first.
      await client.flush().catch(() => undefined);
      client.close();
    },
    async log() {
      return lines.slice();
    },
  };

  process.on('message', async (message) => {
    const handler = handlers[message.type];
    try {
      if (!handler) throw new Error(`unknown command ${message.type}`);
      const value = await handler(message);
      process.send({ id: message.id, ok: true, value });
      if (message.type === 'close') {
        // Pending retries (a 1 s sleep each) keep the process alive until they are done.
        process.disconnect();
      }
    } catch (error) {
      process.send({ id: message.id, error: String(error && error.stack ? error.stack : error) });
    }
  });
  process.send({ ready: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
