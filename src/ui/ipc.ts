import { z } from 'zod';
import { IPC } from './ipc-channels.js';

export { IPC, type VigilApi } from './ipc-channels.js';

/** Check ids are catalog ids: short, lower-case, dashes. Anything else is not ours. */
export const checkIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/);

const recheckSchema = z.discriminatedUnion('phase', [
  z.strictObject({ phase: z.literal('idle') }),
  z.strictObject({ phase: z.literal('checking') }),
  z.strictObject({ phase: z.literal('result'), status: z.enum(['pass', 'fail', 'unknown', 'error']), at: z.string() }),
  z.strictObject({ phase: z.literal('failed'), message: z.string() }),
]);

export const walkthroughModelSchema = z.strictObject({
  checks: z.array(
    z.strictObject({
      id: checkIdSchema,
      title: z.string(),
      why: z.string(),
      severity: z.string(),
      status: z.enum(['pass', 'fail', 'unknown', 'error']),
      statusText: z.string(),
      reason: z.string().optional(),
      fixed: z.boolean(),
      guide: z.strictObject({ label: z.string(), steps: z.array(z.string()) }).optional(),
      canOpenSettings: z.boolean(),
      adminNote: z.string().optional(),
      recheck: recheckSchema,
    }),
  ),
  progress: z.strictObject({ fixed: z.number().int().min(0), total: z.number().int().min(0), label: z.string() }),
  focus: checkIdSchema.optional(),
  waiting: z.boolean(),
});

export const openSettingsResultSchema = z.strictObject({ ok: z.boolean(), message: z.string().optional().describe('Why it could not open, in words for the user') });

export type RecheckState = z.infer<typeof recheckSchema>;
export type WalkthroughModel = z.infer<typeof walkthroughModelSchema>;
export type WalkthroughCheck = WalkthroughModel['checks'][number];
export type OpenSettingsResult = z.infer<typeof openSettingsResultSchema>;

/**
 * Per invoke channel: the arguments the renderer may send (as the tuple ipcRenderer.invoke passes) and the
 * answer main gives. No channel takes a URL, a path or a command: main derives those from the check id.
 */
export const IPC_CONTRACT = {
  [IPC.getState]: { args: z.tuple([]), result: walkthroughModelSchema },
  [IPC.checkAgain]: { args: z.tuple([checkIdSchema]), result: z.undefined() },
  [IPC.openSettings]: { args: z.tuple([checkIdSchema]), result: openSettingsResultSchema },
} as const;

export type InvokeChannel = keyof typeof IPC_CONTRACT;
export type InvokeArgs<C extends InvokeChannel> = z.infer<(typeof IPC_CONTRACT)[C]['args']>;
export type InvokeResult<C extends InvokeChannel> = z.infer<(typeof IPC_CONTRACT)[C]['result']>;

export type ParsedArgs<C extends InvokeChannel> = { ok: true; args: InvokeArgs<C> } | { ok: false; problem: string };

export function parseInvokeArgs<C extends InvokeChannel>(channel: C, raw: readonly unknown[]): ParsedArgs<C> {
  const parsed = IPC_CONTRACT[channel].args.safeParse(raw);
  if (parsed.success) return { ok: true, args: parsed.data as InvokeArgs<C> };
  return { ok: false, problem: `${channel}: rejected arguments (${parsed.error.issues.map((i) => i.message).join('; ')})` };
}
