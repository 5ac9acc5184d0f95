// TODO(schema): the lead's webhook shapes, until the generated schema has them.
import type { NotificationKind } from '../inbox/types'

export type WebhookFormat = 'generic' | 'slack' | 'discord'

// TODO(schema)
export interface Webhook {
  id: number
  project_id?: number | null
  url: string
  kinds: NotificationKind[]
  format: WebhookFormat
  created_at: string
}

// TODO(schema)
export interface CreatedWebhook {
  webhook: Webhook
  secret: string
}

// TODO(schema)
export interface WebhookDelivery {
  id: number
  webhook_id: number
  notification_key: string
  kind: NotificationKind
  spec_task_id: number
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  last_status?: number | null
  last_error?: string | null
  next_attempt_at?: string | null
  created_at: string
  delivered_at?: string | null
}

export const FORMATS: { value: WebhookFormat; label: string }[] = [
  { value: 'generic', label: 'Generic JSON' },
  { value: 'slack', label: 'Slack' },
  { value: 'discord', label: 'Discord' },
]
