/** The site's name, as its pages and every code message show it. */
export const SITE_NAME = 'Keyhole';
