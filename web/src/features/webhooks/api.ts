// Webhook queries and actions. Delivery events (entity `webhook_delivery`) refresh
// a webhook's deliveries through live.ts: nothing polls.
import { queryOptions, useMutation, useQueryClient } from '@tanstack/react-query'
import { errorMessage } from '../../shared/api/client'
import { toast } from '../../shared/ui/toast'
import { rawJson } from '../inbox/api'
import type { NotificationKind } from '../inbox/types'
import type { CreatedWebhook, Webhook, WebhookDelivery, WebhookFormat } from './types'

export const webhooksKey = ['webhooks'] as const
export const deliveriesKey = (id: number) => ['webhooks', id, 'deliveries'] as const

// TODO(schema): the typed client once the generated schema has these paths.
export const webhooksQuery = queryOptions({
  queryKey: webhooksKey,
  queryFn: () => rawJson<Webhook[]>('GET', '/webhooks'),
})

export const deliveriesQuery = (id: number) =>
  queryOptions({
    queryKey: deliveriesKey(id),
    queryFn: () => rawJson<WebhookDelivery[]>('GET', `/webhooks/${id}/deliveries`),
  })

export interface NewWebhook {
  url: string
  project_id?: number | null
  kinds?: NotificationKind[]
  format?: WebhookFormat
}

export function useCreateWebhook(onCreated: (c: CreatedWebhook) => void) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (body: NewWebhook) => rawJson<CreatedWebhook>('POST', '/webhooks', body),
    onSuccess: (created) => {
      qc.setQueryData<Webhook[]>(webhooksKey, (list) => (list ? [...list.filter((w) => w.id !== created.webhook.id), created.webhook] : list))
      void qc.invalidateQueries({ queryKey: webhooksKey, exact: true })
      onCreated(created)
    },
  })
}

export function useDeleteWebhook(onDone: () => void) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (id: number) => rawJson<null>('DELETE', `/webhooks/${id}`),
    onSuccess: (_, id) => {
      qc.setQueryData<Webhook[]>(webhooksKey, (list) => list?.filter((w) => w.id !== id))
      qc.removeQueries({ queryKey: deliveriesKey(id) })
      toast('ok', `Webhook #${id} removed`)
      onDone()
    },
    onError: (err) => toast('error', `Remove refused: ${errorMessage(err)}`),
  })
}
