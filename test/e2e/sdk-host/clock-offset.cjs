// Preloaded (`node --require`) into an SDK host: shifts the process' wall clock by
// FLAGSTREAM_CLOCK_OFFSET_MS, as on a host whose clock is wrong. Date.now(), new Date()
// and Date() read the shifted clock; timers (setTimeout, setInterval) keep real time,
// as they do on such a host. The offset can be changed later with
// globalThis.__flagstreamClock.set(ms) (a clock stepped by NTP, say).
'use strict';

const RealDate = Date;
const clock = { offsetMs: Number(process.env.FLAGSTREAM_CLOCK_OFFSET_MS ?? 0) || 0 };
clock.set = (ms) => {
  clock.offsetMs = Number(ms) || 0;
};
clock.realNow = () => RealDate.now();

const ShiftedDate = new Proxy(RealDate, {
  construct(target, args, newTarget) {
    const instance = args.length === 0 ? Reflect.construct(target, [RealDate.now() + clock.offsetMs], newTarget) : Reflect.construct(target, args, newTarget);
    return instance;
  },
  apply() {
    // Date() called as a function returns the current time as a string.
    return new RealDate(RealDate.now() + clock.offsetMs).toString();
  },
  get(target, property, receiver) {
    if (property === 'now') return () => RealDate.now() + clock.offsetMs;
    return Reflect.get(target, property, receiver);
  },
});

globalThis.Date = ShiftedDate;
Object.defineProperty(globalThis, '__flagstreamClock', { value: clock, enumerable: false });
