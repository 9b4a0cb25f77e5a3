import { desktopEntry } from '../ui/autostart.js';

/*
 * The text files of the Linux packages: the systemd unit, the wrapper, the autostart entry and the
 * maintainer scripts. Pure functions, so tests read exactly what goes into the .deb and the .rpm.
 */

/** Where the package puts things. /opt/vigil, like other vendor agents: one tree an admin can find and remove. */
export const LAYOUT = {
  prefix: '/opt/vigil',
  node: '/opt/vigil/bin/node',
  app: '/opt/vigil/app',
  cli: '/opt/vigil/app/dist/src/cli/main.js',
  wrapper: '/usr/bin/vigil',
  /** Debian 12 still ships units under /lib (lintian flags /usr/lib there); Fedora/RHEL use /usr/lib. */
  unitDeb: '/lib/systemd/system/vigil.service',
  unitRpm: '/usr/lib/systemd/system/vigil.service',
  autostart: '/etc/xdg/autostart/vigil-tray.desktop',
  /**
   * Where the Electron tray would be installed. It is not built here (Electron's binary cannot be downloaded
   * on the build machines); the autostart entry's TryExec makes desktops skip the entry until it exists.
   */
  tray: '/opt/vigil/tray/vigil-tray',
  etc: '/etc/vigil',
  managedDir: '/etc/vigil/managed.d',
  enrollmentConfig: '/etc/vigil/managed.d/00-enrollment.json',
  enrollmentSecret: '/etc/vigil/enrollment-secret',
  state: '/var/lib/vigil',
  logs: '/var/log/vigil',
} as const;

export const SERVICE = 'vigil.service';

/** `/usr/bin/vigil`: Vigil's own Node 20, whatever `node` is on PATH (Debian 12's is 18). */
export function wrapperScript(): string {
  return `#!/bin/sh
# Vigil runs on the Node 20 runtime shipped with it, not on the system's node (Debian 12's is 18).
exec ${LAYOUT.node} ${LAYOUT.cli} "$@"
`;
}

/**
 * The service. Hardening is as tight as the checks allow; each relaxation says which check needs it:
 * - ProtectHome=read-only, not yes/tmpfs: the screen-lock check reads users' desktop settings (GNOME dconf
 *   through gsettings, KDE's ~/.config/kscreenlockerrc), which live under /home.
 * - No PrivateDevices: the disk-encryption check runs lsblk, whose libblkid probes /dev/<disk>.
 * - No MemoryDenyWriteExecute: V8's JIT maps writable+executable pages; Node aborts without them.
 * - ProtectKernelModules=yes is fine: the not-rooted check reads /proc/sys/kernel/tainted and
 *   /sys/kernel/security/lockdown, which stay readable; only /usr/lib/modules and module loading go away.
 * - No ProtectProc=invisible: the EDR check looks for other users' processes in /proc.
 * - No SystemCallFilter: the checks run many tools (apt-get, nft, iptables, lsblk, mokutil, gsettings) whose
 *   system calls are not all covered by @system-service, and PID 1 here is not systemd, so a filter could not be
 *   tried against them.
 * - Capabilities kept: CAP_NET_ADMIN and CAP_NET_RAW (nft/iptables list the firewall rules), CAP_DAC_READ_SEARCH
 *   and CAP_DAC_OVERRIDE (/etc/shadow for the root-password check, users' settings files), CAP_SYS_PTRACE
 *   (/proc/<pid>/exe of other users' processes, for the EDR check), CAP_CHOWN and CAP_FOWNER (the daemon
 *   sets modes on its socket and state files). Everything else root could do is dropped.
 * - AF_NETLINK: nftables and iptables talk to the kernel over netlink.
 * - apt-get -s (security updates) runs with Debug::NoLocking, so a read-only /var/lib/dpkg is enough.
 */
export function systemdUnit(): string {
  return `[Unit]
Description=Vigil endpoint agent (device posture, identity and reporting)
Documentation=https://github.com/vigil-dev/vigil
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${LAYOUT.node} ${LAYOUT.cli} daemon
Restart=always
RestartSec=5
StateDirectory=vigil
StateDirectoryMode=0700
LogsDirectory=vigil
LogsDirectoryMode=0700
RuntimeDirectory=vigil
RuntimeDirectoryMode=0755
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
PrivateMounts=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_SYS_PTRACE CAP_CHOWN CAP_FOWNER
UMask=0077

[Install]
WantedBy=multi-user.target
`;
}

/** Starts the tray hidden at each desktop login; TryExec skips the entry where the tray is not installed. */
export function trayAutostart(): string {
  const entry = desktopEntry({ exec: [LAYOUT.tray, '--hidden'], name: 'Vigil', comment: 'Device security status', icon: 'vigil' });
  // TryExec goes right after Exec, so desktops that do not find the tray binary ignore the entry silently.
  return entry.replace(/^(Exec=.*)$/m, `$1\nTryExec=${LAYOUT.tray}`);
}

const dirsSh = `# State and logs are root's alone: they hold the device key and identity.
install -d -m 0700 -o root -g root ${LAYOUT.state} ${LAYOUT.logs}
install -d -m 0755 -o root -g root ${LAYOUT.etc} ${LAYOUT.managedDir}
if [ -f ${LAYOUT.enrollmentSecret} ]; then chown root:root ${LAYOUT.enrollmentSecret}; chmod 0600 ${LAYOUT.enrollmentSecret}; fi`;

/** Debian postinst: dirs, then enable and (re)start only where systemd is PID 1 (not in a chroot or container build). */
export function debPostinst(): string {
  return `#!/bin/sh
set -e

case "$1" in
  configure)
    ${dirsSh.split('\n').join('\n    ')}
    # As debhelper's snippets do, through init-system-helpers; only where systemd runs (not in a chroot or an
    # image being built), as the service would not start there anyway.
    if [ -d /run/systemd/system ]; then
      systemctl --system daemon-reload >/dev/null || true
      deb-systemd-helper unmask ${SERVICE} >/dev/null || true
      deb-systemd-helper enable ${SERVICE} >/dev/null || true
      # On upgrade prerm left the old agent running; restart it on the new code. State and identity stay.
      if [ -n "$2" ]; then
        deb-systemd-invoke restart ${SERVICE} >/dev/null || true
      else
        deb-systemd-invoke start ${SERVICE} >/dev/null || true
      fi
    fi
    ;;
  abort-upgrade|abort-remove|abort-deconfigure)
    ;;
  *)
    echo "postinst called with unknown argument '$1'" >&2
    exit 1
    ;;
esac

exit 0
`;
}

/** Debian prerm: stop the agent on removal only; an upgrade restarts it in postinst. */
export function debPrerm(): string {
  return `#!/bin/sh
set -e

if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop ${SERVICE} >/dev/null || true
fi

exit 0
`;
}

/**
 * Debian postrm: on purge, the device's state and logs (its key and identity), and the directories the
 * package made. Conffiles (the autostart entry, baked-in enrollment) are dpkg's to remove on purge, per policy;
 * a config.json an admin wrote is the admin's and stays, and so does /etc/vigil around it.
 */
export function debPostrm(): string {
  return `#!/bin/sh
set -e

case "$1" in
  purge)
    # Forgets the enablement symlinks and state deb-systemd-helper keeps (works without systemd running).
    if command -v deb-systemd-helper >/dev/null; then
      deb-systemd-helper purge ${SERVICE} >/dev/null || true
      deb-systemd-helper unmask ${SERVICE} >/dev/null || true
    fi
    rm -rf ${LAYOUT.state} ${LAYOUT.logs} /run/vigil
    rmdir ${LAYOUT.managedDir} 2>/dev/null || true
    rmdir ${LAYOUT.etc} 2>/dev/null || true
    ;;
  remove|upgrade|failed-upgrade|abort-install|abort-upgrade|disappear)
    ;;
  *)
    echo "postrm called with unknown argument '$1'" >&2
    exit 1
    ;;
esac

# No Debian package owns /opt (base-files does not ship it), so dpkg removes it with the package's last file
# there when it is empty; the FHS says it exists, so put it back.
if [ "$1" = remove ] || [ "$1" = purge ]; then
  [ -d /opt ] || install -d -m 0755 /opt
fi

if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi

exit 0
`;
}

/**
 * RPM scriptlets ($1 counts installed instances after the transaction: 1 install, 2 upgrade, 0 erase).
 * RPM has no purge: erasing removes state and logs, as purge does on Debian; %config(noreplace) keeps
 * edited config files as .rpmsave.
 */
export function rpmScriptlets(): { post: string; preun: string; postun: string } {
  return {
    post: `${dirsSh}
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  systemctl enable ${SERVICE} >/dev/null 2>&1 || :
  if [ "$1" -ge 2 ]; then systemctl restart ${SERVICE} >/dev/null 2>&1 || :; else systemctl start ${SERVICE} >/dev/null 2>&1 || :; fi
fi
exit 0`,
    preun: `if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl disable --now ${SERVICE} >/dev/null 2>&1 || :
fi
exit 0`,
    postun: `if [ "$1" -eq 0 ]; then
  rm -rf ${LAYOUT.state} ${LAYOUT.logs} /run/vigil
  rmdir ${LAYOUT.managedDir} ${LAYOUT.etc} 2>/dev/null || :
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi
exit 0`,
  };
}
