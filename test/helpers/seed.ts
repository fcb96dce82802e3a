import { readFileSync } from 'node:fs';

/**
 * The product description's own request body, byte for byte as its curl example sends it (the
 * text between the single quotes, its newline and five spaces included). Tests send SEED_BODY
 * unchanged; SEED is the same body parsed, for tests that vary a field around it.
 */
export const SEED_BODY = readFileSync(new URL('../fixtures/seed-provision.json', import.meta.url), 'utf8');
export const SEED = JSON.parse(SEED_BODY) as {
  tier: string;
  region: string;
  cloudProvider: string;
  configuration: { databaseSize: string; storageGb: number; enableHa: boolean };
};
/** The seed's tenant id and path, from its curl example. */
export const SEED_TENANT = '550e8400';
export const SEED_PATH = `/api/v1/infrastructure/tenants/${SEED_TENANT}/provision`;
/** A version-4 UUID, what the seed's entity `id` is. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
