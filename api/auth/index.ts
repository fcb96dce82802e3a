export {
  AUTH_ERROR_CODES,
  PRINCIPAL_NAME_MAX,
  SCOPES,
  hasScope,
  isScope,
  knownScopes,
  requireScope,
  sanitizePrincipalName,
  type Principal,
  type PrincipalKind,
  type Scope,
} from './principal.js';
export {
  SCRYPT_PARAMS,
  TOKEN_PREFIX,
  TokenVerifier,
  generateToken,
  hashToken,
  loadTokenFile,
  parseTokenFile,
  parseTokenHash,
  type AuthFs,
  type TokenEntry,
  type TokenFile,
  type TokenHash,
} from './tokens.js';
export {
  MAX_JWT_LENGTH,
  loadJwksFile,
  looksLikeJwt,
  parseJwks,
  principalFromClaims,
  verifyJwt,
  type JwksKey,
  type JwtAlgorithm,
  type JwtClaims,
  type JwtVerifyOptions,
} from './jwt.js';
export { BOOTSTRAP_TOKEN_FILE, BOOTSTRAP_TOKENS_FILE, BOOTSTRAP_TOKEN_NAME, ensureBootstrapToken, type BootstrapResult } from './bootstrap.js';
export {
  ANONYMOUS_PRINCIPAL,
  MIN_JWT_SECRET_BYTES,
  createAuthenticator,
  parseBearer,
  type AuthConfig,
  type Authenticator,
} from './authenticator.js';
