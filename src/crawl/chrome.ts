/**
 * A page's chrome, as reader views leave it out: navigation, site headers and footers, sidebars,
 * forms, dialogs, cookie banners, ads, share bars. Shared by the main-content libraries' cleaning
 * (./main-content.ts) and the sliced fallback (./page-text.ts).
 */

/** Elements that are chrome wherever they are (a `<header>` is chrome outside `<main>`/`<article>` only). */
export const CHROME_TAGS: ReadonlySet<string> = new Set(['nav', 'aside', 'footer', 'form', 'dialog', 'menu']);

/** ARIA roles of chrome. */
export const CHROME_ROLES: ReadonlySet<string> = new Set([
  'navigation',
  'banner',
  'contentinfo',
  'complementary',
  'search',
  'dialog',
  'alertdialog',
  'menu',
  'menubar',
  'toolbar',
]);

/** Ids of the common cookie-consent tools' banners. */
export const CHROME_IDS: ReadonlySet<string> = new Set([
  'onetrust-consent-sdk',
  'onetrust-banner-sdk',
  'CybotCookiebotDialog',
  'cookie-law-info-bar',
  'cmplz-cookiebanner-container',
  'usercentrics-root',
  'didomi-host',
  'qc-cmp2-container',
  'truste-consent-track',
  'cookie-banner',
  'cookie-notice',
  'cookie-consent',
]);

/**
 * Class words of chrome, each a whole word of a class name (between start, end, space, `_` or
 * `-`): cookie banners, ads, share bars, sidebars, breadcrumbs, related links and recommendations, reviews and comments, Sphinx's permalink marks (`headerlink`). Only class
 * names are read, not ids: documentation generators derive ids from headings (a section titled
 * "Cookies" has the id `cookies`).
 */
export const CHROME_CLASS =
  /(?:^|[\s_-])(?:cookies?|consent|gdpr|cookiebanner|adverts?|advertisement|ads?|adsbygoogle|sponsored|promo|newsletter|share|sharing|sharedaddy|social|sidebar|sphinxsidebar|breadcrumbs?|related|recommended|recommendations?|reviews?|upsells?|comments?|popup|modal|masthead|skip-link|navbar|headerlink)(?:$|[\s_-])/i;
