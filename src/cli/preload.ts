/**
 * The image preloads jemalloc into node (deploy/Dockerfile, `LD_PRELOAD`): glibc's malloc keeps
 * the Temporal core's freed memory as fragments, jemalloc returns it (README, "Worker memory").
 * The processes arena-source starts (git, ssh, gpg, oras, the git host) gain nothing from it and
 * would each load it again, ≈ 4 ms per exec measured: it is taken out of what they inherit.
 */
const JEMALLOC = /(^|\/)libjemalloc\.so(\.\d+)?$/;

export function keepJemallocToThisProcess(env: NodeJS.ProcessEnv = process.env): void {
  const preload = env.LD_PRELOAD;
  if (!preload) return;
  // ld.so separates LD_PRELOAD entries with spaces or colons.
  const others = preload.split(/[\s:]+/).filter((entry) => entry && !JEMALLOC.test(entry));
  if (others.length > 0) env.LD_PRELOAD = others.join(':');
  else delete env.LD_PRELOAD;
}
