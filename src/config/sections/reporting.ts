import { z } from 'zod';

/** The `reporting` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const reportingConfigSchema = z.strictObject({});
