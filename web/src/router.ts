import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { onSessionEnded } from './api'
import { pageTitle } from './lib/pageTitle'
import { useSession } from './stores/session'
import DashboardView from './views/DashboardView.vue'
import LoginView from './views/LoginView.vue'

// Screens other than the first two load on demand (the viewer's OpenSeadragon and the
// charts stay out of the initial bundle).
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true, title: 'Log in' } },
  { path: '/', name: 'dashboard', component: DashboardView, meta: { title: 'Dashboard' } },
  { path: '/studies', name: 'studies', component: () => import('./views/StudiesView.vue'), meta: { title: 'Studies' } },
  { path: '/studies/:id', name: 'study', component: () => import('./views/StudyView.vue'), props: true, meta: { title: 'Study' } },
  { path: '/images', name: 'images', component: () => import('./views/ImagesView.vue'), meta: { title: 'Images' } },
  { path: '/viewer/:imageId', name: 'viewer', component: () => import('./views/ViewerView.vue'), props: true, meta: { title: 'Viewer' } },
  { path: '/jobs', name: 'jobs', component: () => import('./views/JobsView.vue'), meta: { title: 'Analyses & jobs' } },
  { path: '/models', name: 'models', component: () => import('./views/ModelsView.vue'), meta: { title: 'Models' } },
  { path: '/messages', name: 'messages', component: () => import('./views/MessagesView.vue'), meta: { title: 'Messages' } },
  { path: '/admin', name: 'admin', component: () => import('./views/AdminView.vue'), meta: { title: 'Admin', admin: true } },
  { path: '/keys', name: 'keys', component: () => import('./views/KeysView.vue'), meta: { title: 'API keys' } },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach(async (to) => {
  const session = useSession()
  if (!session.loaded) await session.load()
  if (!to.meta.public && !session.loggedIn) {
    return { name: 'login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  }
  if (to.meta.admin && !session.isAdmin) return { name: 'dashboard' }
  return true
})

// The session ended (a 401 from the API): forget it and go to the login page with the page
// the user was on as `next` — once, however many requests were refused meanwhile.
let leaving = false
onSessionEnded(() => {
  const here = router.currentRoute.value
  if (leaving || here.meta.public) return
  leaving = true
  useSession().me = null
  void router.push({ name: 'login', query: { next: here.fullPath } }).finally(() => {
    leaving = false
  })
})

// A change of the query only (a study's tab, the viewer's mode) keeps the title the page
// gave itself (usePageTitle: the study's or the image's name).
router.afterEach((to, from) => {
  if (from.matched.length && to.path === from.path) return
  document.title = pageTitle(String(to.meta.title ?? ''))
})
