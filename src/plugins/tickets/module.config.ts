export default {
  id: 'tickets',
  name: 'Support tickets',
  version: '1.2.0',
  api: '^1.2.0',
  permissions: ['tickets.tickets.read', 'tickets.tickets.write', 'tickets.tickets.close', 'tickets.comments.write'],
  nav: {
    basePath: '/app/tickets',
    items: [
      { path: '/app/tickets', label: 'Tickets', permissions: ['tickets.tickets.read'] },
      { path: '/app/tickets/new', label: 'New ticket', permissions: ['tickets.tickets.write'] },
      { path: '/app/tickets/triage', label: 'Triage', permissions: ['tickets.tickets.close'] },
    ],
  },
}
