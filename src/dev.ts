/**
 * True in every build but the minified UMD bundle, whose build sets it to false: there the long
 * programmer-error messages drop out and each names only what was wrong (`invalid options.url`), the
 * way production builds of UI libraries do. Develop against the plain UMD bundle or the ESM/CJS builds.
 */
export const DEV: boolean = true;
