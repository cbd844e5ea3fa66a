/** fetch with a timeout and a readable error naming the service. */
export async function httpJson<T>(service: string, url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<T> {
  const { timeoutMs = 10_000, ...rest } = init;
  let response: Response;
  try {
    response = await fetch(url, { ...rest, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new Error(`${service} did not answer at ${new URL(url).origin}: ${(error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new HttpError(service, response.status, text);
  return (text ? JSON.parse(text) : undefined) as T;
}

export class HttpError extends Error {
  constructor(readonly service: string, readonly status: number, readonly body: string) {
    super(`${service} answered ${status}: ${body.slice(0, 500)}`);
  }
}
