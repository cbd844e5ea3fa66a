import { KeyedLock } from './keyed-lock';

describe('KeyedLock', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('runs work of one key one at a time, in order, and different keys side by side', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name} start`);
      await tick();
      log.push(`${name} end`);
      return name;
    };
    const results = await Promise.all([lock.run('a', job('a1')), lock.run('a', job('a2')), lock.run('b', job('b1'))]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    expect(log.indexOf('a1 end')).toBeLessThan(log.indexOf('a2 start'));
    expect(log.indexOf('b1 start')).toBeLessThan(log.indexOf('a1 end'));
    expect(lock.isHeld('a')).toBe(false);
  });

  it('goes on with the next work after one fails, and passes the failure to its caller', async () => {
    const lock = new KeyedLock();
    const failed = lock.run('a', async () => {
      throw new Error('boom');
    });
    const next = lock.run('a', async () => 'next');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
  });

  it('keeps the key past the work while what it holds is unsettled, and answers the caller at once', async () => {
    const lock = new KeyedLock();
    let landed = () => {};
    const inFlight = new Promise<void>((resolve) => (landed = resolve));
    const log: string[] = [];
    const first = lock.run('a', async (hold) => {
      hold(inFlight.then(() => log.push('landed')));
      return 'answered';
    });
    const second = lock.run('a', async () => log.push('second'));
    await expect(first).resolves.toBe('answered');
    await new Promise((r) => setTimeout(r, 20));
    expect(lock.isHeld('a')).toBe(true);
    expect(log).toEqual([]);
    landed();
    await second;
    expect(log).toEqual(['landed', 'second']);
    await new Promise((r) => setImmediate(r));
    expect(lock.isHeld('a')).toBe(false);
  });
});
