// How many physical cores the machine's CPUs make, as Linux's sysfs tells it: CPUs that are
// hardware threads of one core list each other in topology/thread_siblings_list. runner-node's
// adaptive threading sizes its pool from it, a thread per core, since onnxruntime's own count
// can differ from the kernel's (on a 2-vCPU Zen 5 host it made a pool of one thread). Elsewhere
// (macOS, Windows, a sysfs it cannot read) it says nothing, and onnxruntime's count stands.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** More CPUs than any machine has: a list past it is not one to trust. */
const MAX_CPUS = 1 << 16;

/** The number of distinct cores among the online CPUs, or undefined where sysfs does not say. */
export function physicalCoreCount(sysfs = '/sys/devices/system/cpu'): number | undefined {
  try {
    const online = parseCpuList(readFileSync(join(sysfs, 'online'), 'utf8'));
    if (!online) return undefined;
    const cores = new Set<string>();
    for (const cpu of online) {
      const siblings = readFileSync(
        join(sysfs, `cpu${cpu}`, 'topology', 'thread_siblings_list'),
        'utf8',
      ).trim();
      if (!parseCpuList(siblings)?.includes(cpu)) return undefined;
      cores.add(siblings);
    }
    return cores.size > 0 ? cores.size : undefined;
  } catch {
    return undefined;
  }
}

/** A kernel CPU list ("0-3,8,10-11") as CPU numbers; undefined if it is not one. */
export function parseCpuList(text: string): number[] | undefined {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!range) return undefined;
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    if (last < first || last >= MAX_CPUS || cpus.length + last - first >= MAX_CPUS)
      return undefined;
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}
