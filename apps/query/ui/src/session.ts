/**
 * The project's secret key lives in sessionStorage only: gone when the tab closes, never in the URL (view state
 * is in the URL and is meant to be shared), never in localStorage, never sent anywhere but the Authorization
 * header of this origin's API.
 */
const KEY = "ingest.insights.key";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}
