// Reading Chromium traces (browser.startTracing with the 'toplevel' category) for the benchmarks.

/**
 * The page's main-thread (CrRendererMain) tasks: their count, those whose thread CPU time (tdur)
 * exceeds 50 ms, the longest, and their CPU time in all. A task is an outermost RunTask event: the
 * trace nests a ThreadControllerImpl::RunTask in each RunTask, and that is not a task of its own.
 */
export function mainThreadTasks(trace) {
  const events = trace.traceEvents ?? trace;
  const main = new Set(
    events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`),
  );
  const runs = events.filter((e) => e.ph === 'X' && /RunTask/.test(e.name) && main.has(`${e.pid}:${e.tid}`)).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const tasks = [];
  const ends = new Map(); // thread -> end of its current outermost task
  for (const e of runs) {
    const thread = `${e.pid}:${e.tid}`;
    if (e.ts < (ends.get(thread) ?? -Infinity)) continue;
    ends.set(thread, e.ts + e.dur);
    tasks.push(e);
  }
  if (!tasks.length || tasks.every((e) => e.tdur === undefined)) throw new Error('the trace holds no main-thread tasks with CPU times');
  const cpu = tasks.map((e) => (e.tdur ?? 0) / 1000);
  return { tasks: tasks.length, long: cpu.filter((ms) => ms > 50), longest: Math.max(...cpu), total: cpu.reduce((a, b) => a + b, 0) / 1000 };
}
