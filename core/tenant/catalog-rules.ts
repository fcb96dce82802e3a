import {
  CATALOG,
  REGIONS,
  describeSize,
  lookupDatabaseSize,
  sizesWithinTier,
  suggestDatabaseSize,
  suggestRegion,
  tierSizeProblem,
  DATABASE_SIZES,
} from './catalog.js';
import type { CloudProvider, Tier } from './types.js';

/** A finding about one field of a tenant document, before it is given a source position. */
export interface FieldFinding {
  path: Array<string | number>;
  message: string;
}

export const REGION_PATH = ['spec', 'region'];
export const DATABASE_SIZE_PATH = ['spec', 'configuration', 'databaseSize'];

/**
 * The catalog checks of a tenant spec: the region and the database size must be the provider's,
 * the size within the tier's limits. A retired size is not an error: it is a warning naming the
 * replacement, so existing tenants keep reconciling while their owners are told to move.
 * The schema holds the same lists (an editor shows them); these checks give the better message,
 * and the validator reports only these for the two fields, so each field gets one complaint.
 */
export function catalogFindings(
  provider: CloudProvider | undefined,
  tier: Tier | undefined,
  region: unknown,
  databaseSize: unknown,
): { problems: FieldFinding[]; warnings: FieldFinding[] } {
  const problems: FieldFinding[] = [];
  const warnings: FieldFinding[] = [];
  if (provider === undefined) return { problems, warnings };
  if (typeof region === 'string' && !REGIONS[provider].includes(region)) {
    problems.push({ path: REGION_PATH, message: regionMessage(provider, region) });
  }
  if (typeof databaseSize !== 'string') return { problems, warnings };
  const found = lookupDatabaseSize(provider, databaseSize);
  const service = CATALOG.providers[provider].service;
  switch (found.kind) {
    case 'unknown': {
      const hint = suggestDatabaseSize(provider, databaseSize);
      const custom = CATALOG.providers[provider].customSizes;
      const offered = tier === undefined ? Object.keys(DATABASE_SIZES[provider]) : sizesWithinTier(provider, tier);
      const list = `${tier === undefined ? 'one of' : `within the ${tier} tier`}: ${offered.join(', ')}${custom ? `, or ${custom.name}` : ''}`;
      problems.push({
        path: DATABASE_SIZE_PATH,
        message: `database size ${JSON.stringify(databaseSize)} is not offered by ${provider} (${service})${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''} (${list})`,
      });
      return { problems, warnings };
    }
    case 'invalid-custom':
      problems.push({ path: DATABASE_SIZE_PATH, message: `${JSON.stringify(databaseSize)} is not a valid ${service} custom machine type: ${found.problems.join('; ')}` });
      return { problems, warnings };
    case 'retired': {
      const replacement = DATABASE_SIZES[provider][found.replacement];
      warnings.push({
        path: DATABASE_SIZE_PATH,
        message: `database size ${JSON.stringify(databaseSize)} is retired (${found.reason}); use ${JSON.stringify(found.replacement)}${replacement ? ` (${describeSize(replacement)})` : ''} instead. It is still read as ${describeSize(found.size)}.`,
      });
      break;
    }
    default:
      break;
  }
  const over = tier === undefined ? null : tierSizeProblem(tier, found.size);
  if (over !== null && tier !== undefined) {
    problems.push({
      path: DATABASE_SIZE_PATH,
      message: `database size ${JSON.stringify(databaseSize)} (${describeSize(found.size)}) ${over} (allowed: ${sizesWithinTier(provider, tier).join(', ')})`,
    });
  }
  return { problems, warnings };
}

function regionMessage(provider: CloudProvider, region: string): string {
  const hint = suggestRegion(provider, region);
  const didYouMean =
    hint === undefined ? '' : 'region' in hint ? `; did you mean ${JSON.stringify(hint.region)}?` : `; that region belongs to ${hint.provider}`;
  return `region ${JSON.stringify(region)} is not offered by ${provider}${didYouMean} (one of: ${REGIONS[provider].join(', ')})`;
}
