/**
 * The names the installers give the service (build/: systemd unit, LaunchDaemon label, Windows service),
 * and how a person starts it: said wherever a client finds no agent to talk to.
 */
export const SERVICE_NAMES = { systemd: 'vigil.service', launchd: 'dev.vigil.agent', windows: 'Vigil' } as const;

export function startServiceHint(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'darwin':
      return `sudo launchctl kickstart -k system/${SERVICE_NAMES.launchd}`;
    case 'win32':
      return `Start-Service ${SERVICE_NAMES.windows} (in an administrator PowerShell)`;
    default:
      return `sudo systemctl start ${SERVICE_NAMES.systemd}`;
  }
}

/** One line for a client that found no agent: what is wrong, and what to run (a developer's agent, too). */
export function agentNotRunningMessage(socket: string, platform: NodeJS.Platform = process.platform): string {
  return `the Vigil agent is not running (nothing answers on ${socket}); start the service with \`${startServiceHint(platform)}\`, or run \`vigil daemon\` for a local-only agent`;
}
