import { phaseOf, rootCause } from './flink-rest.target';

describe('rootCause', () => {
  it('keeps the innermost cause of a Java stack trace', () => {
    const trace = [
      'org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy',
      '\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(ExecutionFailureHandler.java:180)',
      'Caused by: java.lang.RuntimeException: wrapper',
      '\tat x.y(Z.java:1)',
      'Caused by: software.amazon.kinesis.ResourceNotFoundException: Stream flagstream-events not found',
      '\tat a.b(C.java:2)',
    ].join('\n');
    expect(rootCause(trace)).toBe('software.amazon.kinesis.ResourceNotFoundException: Stream flagstream-events not found');
  });

  it('falls back to the first line when nothing is caused by anything', () => {
    expect(rootCause('java.lang.IllegalStateException: boom\n\tat a.b(C.java:1)')).toBe('java.lang.IllegalStateException: boom');
  });
});

describe('phaseOf: a job as an analysis sees it', () => {
  it('is starting while any task is not running yet, and running once every task runs or has finished', () => {
    expect(phaseOf('RUNNING', { total: 5, running: 3 })).toBe('STARTING');
    expect(phaseOf('RUNNING', { total: 5, running: 5 })).toBe('RUNNING');
    // A backfill's bounded lake source finishes while the job runs on: not a job that is still starting.
    expect(phaseOf('RUNNING', { total: 5, running: 3, finished: 2 })).toBe('RUNNING');
    expect(phaseOf('RUNNING', { total: 5, running: 2, finished: 2 })).toBe('STARTING');
    expect(phaseOf('INITIALIZING')).toBe('STARTING');
    expect(phaseOf('CANCELLING')).toBe('STOPPING');
    expect(phaseOf('RESTARTING')).toBe('FAILING');
    expect(phaseOf('SOMETHING NEW')).toBe('STARTING');
  });
});
