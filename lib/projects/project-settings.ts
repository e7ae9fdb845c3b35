/**
 * What a project tells the SDKs at start-up (posthog-js' remote config, `/flags?config=true`, `/decide`): which
 * client features are on. Today every project has the defaults - a PostHog project with no feature flags,
 * surveys or recordings, autocapture on (page views and page leaves are on in the SDK itself and nothing here
 * turns them off). A project may carry its own `settings` (partial; the rest stays default) once a column or
 * an API sets them; they travel with the project through the token cache, so they are cached exactly like
 * token resolution.
 */
export interface ProjectSettings {
  /** posthog-js autocapture (clicks, changes, submits). `autocapture_opt_out` is its negation. */
  autocapture: boolean;
  heatmaps: boolean;
  deadClicks: boolean;
  /** `capturePerformance.web_vitals` / `.network_timing`; both off sends `capturePerformance: false`. */
  webVitals: boolean;
  networkTiming: boolean;
  exceptionAutocapture: boolean;
  /** Where posthog-js sends events (`analytics.endpoint`); null leaves the SDK's own default (`/e/`). */
  analyticsEndpoint: string | null;
  /** posthog-js sends `$elements_chain` as one string instead of the `$elements` array. */
  elementsChainAsString: boolean;
}

/** PostHog's defaults for a new project, minus what we do not serve (recordings, surveys, site apps, flags). */
export const DEFAULT_PROJECT_SETTINGS: Readonly<ProjectSettings> = Object.freeze({
  autocapture: true,
  heatmaps: false,
  deadClicks: false,
  webVitals: false,
  networkTiming: false,
  exceptionAutocapture: false,
  analyticsEndpoint: "/i/v0/e/",
  elementsChainAsString: true,
});

export function projectSettings(overrides: Partial<ProjectSettings> | null | undefined): ProjectSettings {
  return overrides ? { ...DEFAULT_PROJECT_SETTINGS, ...overrides } : { ...DEFAULT_PROJECT_SETTINGS };
}
