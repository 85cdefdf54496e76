import { defineStore } from 'pinia'
import { ApiError, get, post, type Me, type User } from '../api'

export const useSession = defineStore('session', {
  state: () => ({
    loaded: false,
    me: null as Me | null,
  }),
  getters: {
    user: (s): User | null => s.me?.user ?? null,
    loggedIn: (s): boolean => s.me !== null,
    isAdmin: (s): boolean => s.me?.scope === 'admin' || s.me?.user?.site_role === 'admin',
    name: (s): string => s.me?.user?.display_name || s.me?.user?.username || 'local',
  },
  actions: {
    async load(): Promise<void> {
      try {
        this.me = await get<Me>('/v1/auth/me')
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 401) throw err
        this.me = null
      } finally {
        this.loaded = true
      }
    },
    async login(username: string, password: string): Promise<void> {
      await post('/v1/auth/login', { username, password })
      await this.load()
    },
    async logout(): Promise<void> {
      try {
        await post('/v1/auth/logout')
      } finally {
        this.me = null
      }
    },
  },
})
