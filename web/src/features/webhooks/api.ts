// Webhook queries and actions. Delivery events (entity `webhook_delivery`) refresh
// a webhook's deliveries through live.ts: nothing polls.
import { queryOptions, useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import type { Schemas } from '../../shared/api/client'
import { toast } from '../../shared/ui/toast'
import type { CreatedWebhook, Webhook } from './types'

export const webhooksKey = ['webhooks'] as const
export const deliveriesKey = (id: number) => ['webhooks', id, 'deliveries'] as const

export const webhooksQuery = queryOptions({
  queryKey: webhooksKey,
  queryFn: () => unwrap(api.GET('/api/v1/webhooks')),
})

export const deliveriesQuery = (id: number) =>
  queryOptions({
    queryKey: deliveriesKey(id),
    queryFn: () => unwrap(api.GET('/api/v1/webhooks/{id}/deliveries', { params: { path: { id } } })),
  })

export type NewWebhook = Schemas['CreateWebhook']

export function useCreateWebhook(onCreated: (c: CreatedWebhook) => void) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: (body: NewWebhook): Promise<CreatedWebhook> => unwrap(api.POST('/api/v1/webhooks', { body })),
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
    mutationFn: (id: number) => unwrap(api.DELETE('/api/v1/webhooks/{id}', { params: { path: { id } } })),
    onSuccess: (_, id) => {
      qc.setQueryData<Webhook[]>(webhooksKey, (list) => list?.filter((w) => w.id !== id))
      qc.removeQueries({ queryKey: deliveriesKey(id) })
      toast('ok', `Webhook #${id} removed`)
      onDone()
    },
    onError: (err) => toast('error', `Remove refused: ${errorMessage(err)}`),
  })
}
