/**
 * Image references and the pinning rule: every image names a version tag (or a digest). No tag means `latest`,
 * and `latest` (or a bare distribution name such as `bookworm`) changes under the user between two pulls.
 */

export interface ImageRef {
  repository: string;
  tag: string | null;
  digest: string | null;
}

export function parseImage(ref: string): ImageRef {
  const at = ref.indexOf("@");
  const digest = at >= 0 ? ref.slice(at + 1) : null;
  const name = at >= 0 ? ref.slice(0, at) : ref;
  // A ':' after the last '/' is the tag; one before it belongs to a registry host:port.
  const colon = name.lastIndexOf(":");
  const tag = colon > name.lastIndexOf("/") ? name.slice(colon + 1) : null;
  return { repository: tag === null ? name : name.slice(0, colon), tag, digest };
}

/** Why `ref` is not pinned, or null when it is. */
export function unpinnedReason(ref: string): string | null {
  const { tag, digest } = parseImage(ref);
  if (digest) return null;
  if (tag === null) return "no tag (means latest)";
  if (tag === "latest") return "tag latest";
  if (!/\d/.test(tag)) return `tag ${tag} names no version`;
  return null;
}
