// Applies the saved theme before the first paint (the only thing the dashboard keeps
// in localStorage). "system" (or nothing saved) follows prefers-color-scheme.
try {
  var t = localStorage.getItem('spectask.theme')
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t
} catch (e) {}
