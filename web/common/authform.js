// The login and register forms: post the credentials, show the server's message on refusal, go to the dashboard.
import { api } from './api.js';

export function wireAuthForm(form, path) {
  const error = form.querySelector('[data-testid=error]');
  for (const input of [form.username, form.password]) input.addEventListener('input', () => { error.textContent = ''; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    // Empty fields are named here; everything else about them is the server's to judge.
    const missing = [form.username.value.trim() ? null : 'your username', form.password.value ? null : 'your password']
      .filter(Boolean);
    if (missing.length) {
      error.textContent = `Enter ${missing.join(' and ')}.`;
      (form.username.value.trim() ? form.password : form.username).focus();
      return;
    }
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
