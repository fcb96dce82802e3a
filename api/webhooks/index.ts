export {
  WEBHOOK_ERROR_CODES,
  WEBHOOK_PROVIDERS,
  isRelevantPush,
  isWebhookProvider,
  signGeneric,
  verifyWebhook,
  type VerifyWebhookOptions,
  type WebhookDelivery,
  type WebhookEvent,
  type WebhookHeaders,
  type WebhookProvider,
} from './verify.js';
export { DEFAULT_DELIVERY_CAPACITY, DELIVERY_LOG_FILE, DeliveryLog, type DeliveryLogFs, type DeliveryLogOptions } from './delivery-log.js';
