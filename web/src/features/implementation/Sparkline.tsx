// A small line chart of one series over time (SVG, no library), with the latest
// and highest values in its accessible name.
export function Sparkline(props: {
  values: number[]
  label: string
  format: (v: number) => string
  /** The value the chart's top stands for at least (e.g. 100 for a percentage). */
  floorMax?: number
  className?: string
}) {
  const W = 220
  const H = 44
  const vs = props.values
  const max = Math.max(props.floorMax ?? 0, ...vs, 1e-9)
  const last = vs.at(-1)
  const name =
    vs.length === 0
      ? `${props.label}: no samples yet`
      : `${props.label}: now ${props.format(last!)}, highest ${props.format(Math.max(...vs))} over ${vs.length} samples`
  const pts = vs.map((v, i) => {
    const x = vs.length === 1 ? W : (i / (vs.length - 1)) * W
    const y = H - 2 - (v / max) * (H - 4)
    return `${x.toFixed(1)},${y.toFixed(1)}`
  })
  return (
    <figure className={`spark ${props.className ?? ''}`}>
      <figcaption className="small">
        <span>{props.label}</span> <strong>{last == null ? '–' : props.format(last)}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" height={H} preserveAspectRatio="none" role="img" aria-label={name}>
        <title>{name}</title>
        <line x1="0" x2={W} y1={H - 1} y2={H - 1} className="spark-base" />
        {pts.length > 1 && <polygon points={`0,${H} ${pts.join(' ')} ${W},${H}`} className="spark-area" />}
        {pts.length > 0 && <polyline points={pts.join(' ')} className="spark-line" />}
      </svg>
    </figure>
  )
}
