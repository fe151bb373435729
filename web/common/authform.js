// The login and register forms: post the credentials, show the server's message on refusal, go to the dashboard.
import { api } from './api.js';

export function wireAuthForm(form, path) {
  const error = form.querySelector('[data-testid=error]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await api('POST', path, {
        username: form.username.value.trim(),
        password: form.password.value,
      });
      location.assign('/');
    } catch (e) {
      error.textContent = e.message;
      button.disabled = false;
    }
  });
}
