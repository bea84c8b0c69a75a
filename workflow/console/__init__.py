"""The web console (``casework serve`` at ``/``): agents' queue and case pages,
supervisors' overdue board and reports, auditors' verification and exports.

Server-rendered with Jinja2 (every value escaped), one small script shipped with the
package (countdowns and local times), no CDN and no build step. A browser signs in
with an API token and then holds a session cookie; roles decide as in the API.
"""
