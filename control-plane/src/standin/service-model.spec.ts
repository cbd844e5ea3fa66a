import { describeViolations, loadServiceModel, ModelValidator } from './service-model';

/** The validator against the real model (botocore's kinesisanalyticsv2 service-2.json), not hand-written expectations. */
describe('ModelValidator on the Managed Flink API model', () => {
  const model = loadServiceModel();
  const validator = new ModelValidator(model);

  const create = () => ({
    ApplicationName: 'flagstream-flag-evaluations-0b0f7d8e-1111-4222-8333-944445555666-g1',
    RuntimeEnvironment: 'FLINK-1_20',
    ServiceExecutionRole: 'arn:aws:iam::123456789012:role/flagstream',
    ApplicationConfiguration: {
      ApplicationCodeConfiguration: {
        CodeContentType: 'ZIPFILE',
        CodeContent: { S3ContentLocation: { BucketARN: 'arn:aws:s3:::flagstream-code', FileKey: 'flagstream-runner.jar' } },
      },
      EnvironmentProperties: { PropertyGroups: [{ PropertyGroupId: 'FlinkApplicationProperties', PropertyMap: { 'sql.0': 'SET x;', 'job.name': 'j' } }] },
      FlinkApplicationConfiguration: {
        CheckpointConfiguration: { ConfigurationType: 'DEFAULT' },
        ParallelismConfiguration: { ConfigurationType: 'CUSTOM', Parallelism: 1, ParallelismPerKPU: 1, AutoScalingEnabled: false },
      },
      ApplicationSnapshotConfiguration: { SnapshotsEnabled: true },
    },
  });

  it('is the JSON 1.1 model with the operations the target uses', () => {
    expect(model.metadata).toMatchObject({ protocol: 'json', jsonVersion: '1.1', targetPrefix: 'KinesisAnalytics_20180523', serviceId: 'Kinesis Analytics V2' });
    for (const op of ['CreateApplication', 'DescribeApplication', 'UpdateApplication', 'StartApplication', 'StopApplication', 'DeleteApplication', 'ListApplications', 'ListApplicationSnapshots']) {
      expect(model.operations[op]).toBeDefined();
    }
  });

  it('passes valid requests', () => {
    expect(validator.validateInput('CreateApplication', create())).toEqual([]);
    expect(validator.validateInput('ListApplications', { Limit: 50 })).toEqual([]);
    expect(validator.validateInput('DeleteApplication', { ApplicationName: 'a', CreateTimestamp: 1764136800.123 })).toEqual([]);
    expect(validator.validateInput('DeleteApplication', { ApplicationName: 'a', CreateTimestamp: new Date() })).toEqual([]);
    expect(validator.validateInput('StartApplication', {
      ApplicationName: 'a',
      RunConfiguration: { ApplicationRestoreConfiguration: { ApplicationRestoreType: 'RESTORE_FROM_CUSTOM_SNAPSHOT', SnapshotName: 'a-1' }, FlinkRunConfiguration: { AllowNonRestoredState: false } },
    })).toEqual([]);
  });

  const paths = (issues: { path: string }[]) => issues.map((i) => i.path);

  it('names a missing required member', () => {
    const request: Record<string, unknown> = create();
    delete request.ServiceExecutionRole;
    const issues = validator.validateInput('CreateApplication', request);
    expect(issues).toEqual([{ path: 'ServiceExecutionRole', message: 'Member must not be null' }]);
    expect(describeViolations(issues)).toBe("1 validation error detected: 'ServiceExecutionRole' failed to satisfy constraint: Member must not be null");
  });

  it('refuses a name outside its pattern or length, naming the member', () => {
    expect(paths(validator.validateInput('DescribeApplication', { ApplicationName: 'has space' }))).toEqual(['ApplicationName']);
    const long = validator.validateInput('DescribeApplication', { ApplicationName: 'a'.repeat(129) });
    expect(long).toEqual([expect.objectContaining({ path: 'ApplicationName', message: 'Member must have length less than or equal to 128' })]);
    expect(paths(validator.validateInput('CreateApplication', { ...create(), ServiceExecutionRole: 'role/flagstream' }))).toEqual(['ServiceExecutionRole']);
  });

  it('refuses runtime properties past the model limits: 2048 characters a value, 50 properties a group, 50 groups', () => {
    const withGroups = (groups: unknown[]) => {
      const request = create();
      request.ApplicationConfiguration.EnvironmentProperties.PropertyGroups = groups as never;
      return validator.validateInput('CreateApplication', request);
    };
    expect(withGroups([{ PropertyGroupId: 'g', PropertyMap: { 'sql.0': 'x'.repeat(2048) } }])).toEqual([]);
    expect(paths(withGroups([{ PropertyGroupId: 'g', PropertyMap: { 'sql.0': 'x'.repeat(2049) } }]))).toEqual([
      'ApplicationConfiguration.EnvironmentProperties.PropertyGroups[0].PropertyMap["sql.0"]',
    ]);
    const fiftyOne = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`sql.${i}`, 'x']));
    expect(withGroups([{ PropertyGroupId: 'g', PropertyMap: fiftyOne }])).toEqual([
      expect.objectContaining({ path: 'ApplicationConfiguration.EnvironmentProperties.PropertyGroups[0].PropertyMap', message: 'Member must have length less than or equal to 50' }),
    ]);
    const groups = Array.from({ length: 51 }, (_, i) => ({ PropertyGroupId: `g${i}`, PropertyMap: { a: 'b' } }));
    expect(withGroups(groups)).toEqual([expect.objectContaining({ path: 'ApplicationConfiguration.EnvironmentProperties.PropertyGroups' })]);
    expect(paths(withGroups([{ PropertyGroupId: 'g', PropertyMap: {} }]))).toEqual(['ApplicationConfiguration.EnvironmentProperties.PropertyGroups[0].PropertyMap']);
    expect(paths(withGroups([{ PropertyGroupId: 'g', PropertyMap: { k: '' } }]))).toEqual(['ApplicationConfiguration.EnvironmentProperties.PropertyGroups[0].PropertyMap["k"]']);
  });

  it('refuses unknown enum values, numbers out of range and wrong types', () => {
    expect(validator.validateInput('CreateApplication', { ...create(), RuntimeEnvironment: 'FLINK-1_21' })).toEqual([
      expect.objectContaining({ path: 'RuntimeEnvironment', message: expect.stringContaining('Member must satisfy enum value set: [') }),
    ]);
    expect(validator.validateInput('ListApplications', { Limit: 51 })).toEqual([expect.objectContaining({ path: 'Limit', message: 'Member must have value less than or equal to 50' })]);
    expect(paths(validator.validateInput('ListApplications', { Limit: 0 }))).toEqual(['Limit']);
    expect(paths(validator.validateInput('ListApplications', { Limit: '5' }))).toEqual(['Limit']);
    expect(paths(validator.validateInput('UpdateApplication', { ApplicationName: 'a', CurrentApplicationVersionId: 0 }))).toEqual(['CurrentApplicationVersionId']);
    expect(paths(validator.validateInput('StopApplication', { ApplicationName: 'a', Force: 'false' }))).toEqual(['Force']);
    expect(paths(validator.validateInput('DeleteApplication', { ApplicationName: 'a', CreateTimestamp: '2026-11-26' }))).toEqual(['CreateTimestamp']);
  });

  it('refuses members the model does not have', () => {
    expect(validator.validateInput('StartApplication', { ApplicationName: 'a', RunConfiguration: { ApplicationRestoreConfiguration: { ApplicationRestoreType: 'SKIP_RESTORE_FROM_SNAPSHOT' }, AllowNonRestoredState: true } })).toEqual([
      { path: 'RunConfiguration.AllowNonRestoredState', message: 'is not a member of RunConfiguration' },
    ]);
  });

  it('reads every pattern and type of the model (none is left unchecked)', () => {
    for (const [name, shape] of Object.entries(model.shapes)) {
      if (shape.type === 'string' && shape.pattern) expect(() => validator.validateShape(name, 'x', name)).not.toThrow();
      expect(['structure', 'list', 'map', 'string', 'integer', 'long', 'boolean', 'timestamp', 'blob']).toContain(shape.type);
    }
  });

  it('checks answers too (the stand-in checks its own)', () => {
    const summary = { ApplicationName: 'a', ApplicationARN: 'arn:aws:kinesisanalytics:us-east-1:123456789012:application/a', ApplicationStatus: 'RUNNING', ApplicationVersionId: 1, RuntimeEnvironment: 'FLINK-1_20' };
    expect(validator.validateOutput('ListApplications', { ApplicationSummaries: [summary] })).toEqual([]);
    expect(paths(validator.validateOutput('ListApplications', { ApplicationSummaries: [{ ...summary, ApplicationStatus: 'STARTED' }] }))).toEqual(['ApplicationSummaries[0].ApplicationStatus']);
  });
});
