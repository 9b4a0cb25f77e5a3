import { z } from 'zod';

/** The `identity` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const identityConfigSchema = z.strictObject({});
