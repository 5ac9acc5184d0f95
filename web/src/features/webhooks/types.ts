// The payload shapes a webhook can ask for.
import type { CreatedWebhook, Webhook, WebhookDelivery, WebhookFormat } from '../../shared/api/types'

export type { CreatedWebhook, Webhook, WebhookDelivery, WebhookFormat }

export const FORMATS: { value: WebhookFormat; label: string }[] = [
  { value: 'generic', label: 'Generic JSON' },
  { value: 'slack', label: 'Slack' },
  { value: 'discord', label: 'Discord' },
]
