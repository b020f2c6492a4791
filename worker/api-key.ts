/**
 * The Worker's own look at the API key, before it starts or even touches a session's container
 * instance: a caller without a valid key must not make Cloudflare start a container (each is a
 * standard-1 instance, counted against max_instances). Such requests go to the shared instance,
 * which answers 401 exactly as it always does. Mirrors src/http/api-key.ts: the key comes from
 * `X-API-Key`, else `Authorization: Bearer`, else `?api_key=`. Pure (Node-testable).
 */

export interface KeySecrets {
  API_KEY?: string;
  /** Comma-separated further keys, each accepted like API_KEY. */
  API_KEYS?: string;
}

/** True when the service has no key at all (open, as the service itself is then) or the
 * request presents one of its keys. */
export async function presentsAcceptedKey(request: Request, secrets: KeySecrets): Promise<boolean> {
  const accepted = acceptedKeys(secrets);
  if (accepted.length === 0) return true;
  const presented =
    request.headers.get("x-api-key") ??
    bearerToken(request.headers.get("authorization")) ??
    new URL(request.url).searchParams.get("api_key");
  if (presented === null) return false;
  // Digests first, so the comparison takes the same time whatever the lengths.
  const presentedDigest = await sha256(presented);
  let matched = false;
  for (const key of accepted) {
    if (sameBytes(presentedDigest, await sha256(key))) matched = true;
  }
  return matched;
}

function acceptedKeys(secrets: KeySecrets): string[] {
  return [secrets.API_KEY ?? "", ...(secrets.API_KEYS ?? "").split(",")]
    .map((key) => key.trim())
    .filter((key) => key !== "");
}

function bearerToken(header: string | null): string | null {
  return header?.match(/^Bearer\s+(.+)$/i)?.[1] ?? null;
}

async function sha256(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}
