import { loadConfig, parseDurationSeconds } from './config';

describe('FLAGSTREAM_LATENESS_HORIZON', () => {
  it('defaults to 1h', () => {
    expect(loadConfig({}).latenessHorizonSeconds).toBe(3600);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '' }).latenessHorizonSeconds).toBe(3600);
  });

  it('takes durations in s, m, h and d', () => {
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '90s' }).latenessHorizonSeconds).toBe(90);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '30m' }).latenessHorizonSeconds).toBe(1800);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '2h' }).latenessHorizonSeconds).toBe(7200);
    expect(loadConfig({ FLAGSTREAM_LATENESS_HORIZON: '1d' }).latenessHorizonSeconds).toBe(86400);
    expect(parseDurationSeconds(' 1h ')).toBe(3600);
  });

  it('refuses anything else with an error naming the setting and the value', () => {
    for (const bad of ['1', '1 hour', '-1h', '0s', '1.5h', 'h', '1H', '1w', '1h30m']) {
      expect(() => loadConfig({ FLAGSTREAM_LATENESS_HORIZON: bad })).toThrow(`FLAGSTREAM_LATENESS_HORIZON must be a duration such as "90s", "30m", "1h" or "2d" (at least 1s), got "${bad}"`);
    }
  });
});
