"""What an audit means to a reader: the one read model of an audit (`junit.AuditReading`, from junit XML or
from the audit JSON), the verdict sentences, figures, comparisons with a baseline, Markdown that shows values as
plain text and the case texts. Shared by `swapkl report` and the plugin; imports the analysis and the audit, never
the faces (the plugin, the commands).
"""
