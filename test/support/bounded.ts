/** Runs `one(0)` … `one(count - 1)` with at most `concurrency` in flight; resolves to how many resolved and the rejections. */
export async function runBounded<E = Error>(count: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<{ ok: number; errors: E[] }> {
  let next = 0;
  let ok = 0;
  const errors: E[] = [];
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await one(i);
        ok++;
      } catch (err) {
        errors.push(err as E);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok, errors };
}
