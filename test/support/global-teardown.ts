export default async function globalTeardown(): Promise<void> {
  await globalThis.__MC_EMBEDDED_PG__?.stop();
}
