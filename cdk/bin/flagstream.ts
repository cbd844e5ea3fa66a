#!/usr/bin/env node
/** The CDK app: `npm run synth` (repository root) writes cdk/cdk.out; `npx cdk deploy` (in cdk/) deploys it. */
import { join } from 'node:path';
import { createApp } from '../lib/app';

// Run by the CDK CLI, which says where to write; run directly (npm run synth), cdk/cdk.out.
const { app } = createApp({ outdir: process.env.CDK_OUTDIR ?? join(__dirname, '..', '..', 'cdk.out') });
app.synth();
