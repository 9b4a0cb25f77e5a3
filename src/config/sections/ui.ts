import { z } from 'zod';

/** The `ui` section of config.json. Every key needs a default: a fresh install runs with no config file. */
export const uiConfigSchema = z.strictObject({});
